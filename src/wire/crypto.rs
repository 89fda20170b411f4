//! The KMS cryptographic primitives (spec 6): Rijndael with a 128-bit block and 128- or
//! 160-bit keys, the V6 key-schedule change, MAC4, CBC with PKCS#7, salts, and the V6
//! response HMAC (spec 7.5).
//!
//! What uses what:
//!
//! - V4: in-crate [`Rijndael`] with a 160-bit key, 11 rounds ([`V4_CIPHER`]); integrity by
//!   [`mac4`] (spec 6.2).
//! - V5: RustCrypto's `aes::Aes128` ([`v5_cipher`]); integrity by `SHA-256(R)`
//!   ([`random_hash`], spec 7.4).
//! - V6: in-crate [`Rijndael`], AES-128 with three round-key bytes changed ([`V6_CIPHER`]);
//!   integrity by [`random_hash`] and [`v6_hmac`] (spec 7.5).
//!
//! ```text
//! MAC4(m)   = CBC-MAC over m || 80 || 00*k, zero IV, k = (15 - len(m)) mod 16   (spec 6.2)
//! Salt(X)   = D_K(X), one block, no chaining                                    (spec 6.3)
//! V6 key    = AES-128 expansion of K6, then expanded bytes 64/96/128 ^= 73/09/E4 (spec 6.3)
//! V6 HMAC   = HMAC-SHA-256(SHA-256(slot LE)[16..32], S_resp || body[..116+P])[16..32]
//! slot      = ((t div C1) * C2 + C3 + d * C1) mod 2^64, d in {-1, 0, +1}       (spec 7.5)
//! ```
//!
//! # Implementation
//!
//! The in-crate cipher is the classic table-driven Rijndael: four 1 KiB encryption tables
//! (SubBytes + ShiftRows + MixColumns per byte position), four decryption tables for the
//! equivalent inverse cipher (FIPS-197 5.3.5), and the S-box and inverse S-box for the last
//! round. The S-box is written out (FIPS-197 figure 7); every other table is computed from
//! it by `const fn` at compile time, and so are the expanded keys of [`V4_CIPHER`] and
//! [`V6_CIPHER`], so using them costs no set-up at run time. A test re-derives the S-box
//! from its definition (inverse in GF(2^8) and the affine map).
//!
//! CBC decryption is the exception: its block decryptions do not depend on each other, so
//! where the CPU has AES instructions they run eight at a time through `aes::hazmat`'s
//! parallel round, which takes any round keys ([`BlockCipher128::decrypt_blocks`]). Single
//! blocks and CBC encryption stay on the tables: one hazmat call per round per block costs
//! as much as a table round.
//!
//! Table lookups indexed by key-dependent bytes leak timing through the cache. That does not
//! matter here: every KMS key is a published constant (spec 6.2, 6.3), so there is no secret
//! to protect, and the MAC comparisons need not be constant-time either.
//!
//! Left out: any mode other than CBC, key sizes other than 128 and 160 bits (the cipher
//! supports `Nk = 4` and `Nk = 5` only), and streaming interfaces; KMS messages are a few
//! hundred bytes and always processed whole.

use std::sync::LazyLock;

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::base::FileTime;

/// Block size of every KMS cipher, in bytes.
pub const BLOCK_LEN: usize = 16;

/// The V4 key, 160 bits (spec 6.2).
pub const V4_KEY: [u8; 20] = [
    0x05, 0x3D, 0x83, 0x07, 0xF9, 0xE5, 0xF0, 0x88, 0xEB, 0x5E, 0xA6, 0x68, 0x6C, 0xF0, 0x37, 0xC7,
    0xE4, 0xEF, 0xD2, 0xD6,
];

/// The V5 key, plain AES-128 (spec 6.3).
pub const V5_KEY: [u8; 16] = [
    0xCD, 0x7E, 0x79, 0x6F, 0x2A, 0xB2, 0x5D, 0xCB, 0x55, 0xFF, 0xC8, 0xEF, 0x83, 0x64, 0xC4, 0x70,
];

/// The V6 key, expanded with the AES-128 schedule and then changed per
/// [`V6_SCHEDULE_CHANGE`] (spec 6.3).
pub const V6_KEY: [u8; 16] = [
    0xA9, 0x4A, 0x41, 0x95, 0xE2, 0x01, 0x43, 0x2D, 0x9B, 0xCB, 0x46, 0x04, 0x05, 0xD8, 0x4A, 0x21,
];

/// The V6 key-schedule change (spec 6.3): `(byte offset in the 176-byte expanded key, XOR
/// mask)`. Each offset is the first byte of round key 4, 6 and 8. Applied after expansion;
/// the change does not propagate into later round keys.
pub const V6_SCHEDULE_CHANGE: [(usize, u8); 3] = [(64, 0x73), (96, 0x09), (128, 0xE4)];

/// The V4 cipher: Rijndael with the 160-bit [`V4_KEY`], 11 rounds. Expanded at compile time.
pub static V4_CIPHER: Rijndael = Rijndael::rijndael160(&V4_KEY);

/// The V6 cipher: AES-128 with [`V6_KEY`] and the [`V6_SCHEDULE_CHANGE`]. Expanded at
/// compile time.
pub static V6_CIPHER: Rijndael = Rijndael::aes128_kms_v6(&V6_KEY);

static V5_CIPHER: LazyLock<Aes128Cipher> = LazyLock::new(|| Aes128Cipher::new(&V5_KEY));

/// The V5 cipher: RustCrypto's AES-128 with [`V5_KEY`] (hardware AES when the CPU has it).
/// Built once, on first use.
pub fn v5_cipher() -> &'static Aes128Cipher {
    &V5_CIPHER
}

/// V6 HMAC time-slot length `C1` in 100 ns units (spec 7.5): 148199999933, about 4 h 07 min.
pub const V6_SLOT_LEN: u64 = 0x0000_0022_8168_89BD;
/// V6 HMAC slot multiplier `C2` (spec 7.5).
pub const V6_SLOT_MUL: u64 = 0x0000_0020_8CBA_B5ED;
/// V6 HMAC slot offset `C3` (spec 7.5).
pub const V6_SLOT_ADD: u64 = 0x3156_CD5A_C628_477A;

/// Why a CBC buffer could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext is empty or not a whole number of blocks.
    #[error("ciphertext length {len} is not a non-zero multiple of 16")]
    BadLength {
        /// Length found, in bytes.
        len: usize,
    },
    /// The decrypted PKCS#7 padding is not 1..=16 bytes each equal to the pad length.
    #[error("invalid PKCS#7 padding")]
    BadPadding,
}

/// A cipher with a 128-bit block: the in-crate [`Rijndael`] and the V5 [`Aes128Cipher`].
///
/// Blocks are byte arrays in wire order (spec 6.1: no endianness conversion).
pub trait BlockCipher128 {
    /// Encrypts one block in place.
    fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]);
    /// Decrypts one block in place.
    fn decrypt_block(&self, block: &mut [u8; BLOCK_LEN]);
    /// Decrypts every block of `blocks` in place, each on its own (no chaining). CBC
    /// decryption uses this: unlike encryption, its blocks do not wait on each other.
    fn decrypt_blocks(&self, blocks: &mut [[u8; BLOCK_LEN]]) {
        for block in blocks {
            self.decrypt_block(block);
        }
    }
}

/// RustCrypto's AES-128, used for V5 (spec 6.3: standard AES libraries cover V5).
#[derive(Clone)]
pub struct Aes128Cipher(aes::Aes128);

impl Aes128Cipher {
    /// Expands `key`.
    pub fn new(key: &[u8; 16]) -> Self {
        Self(aes::Aes128::new(key.into()))
    }
}

impl std::fmt::Debug for Aes128Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes128Cipher")
    }
}

impl BlockCipher128 for Aes128Cipher {
    fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        BlockCipherEncrypt::encrypt_block(&self.0, block.into());
    }
    fn decrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        BlockCipherDecrypt::decrypt_block(&self.0, block.into());
    }
}

/// Most round keys any supported key size needs: `Nr + 1` with `Nr = 11` (`Nk = 5`).
const MAX_ROUND_KEYS: usize = 12;

/// Rijndael with a 128-bit block and a 128-bit (`Nk = 4`, 10 rounds) or 160-bit (`Nk = 5`,
/// 11 rounds) key, exactly as FIPS-197 describes it with `Nr = Nk + 6` (spec 6.1).
///
/// Round keys are kept as big-endian words, one `[u32; 4]` per round, so word `c` of a round
/// key holds bytes `4c..4c+4` of that round key in wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rijndael {
    /// Encryption round keys, `rounds + 1` of them used.
    enc: [[u32; 4]; MAX_ROUND_KEYS],
    /// Round keys of the equivalent inverse cipher: reversed, InvMixColumns applied to the
    /// inner ones (FIPS-197 5.3.5).
    dec: [[u32; 4]; MAX_ROUND_KEYS],
    /// `Nr`: 10 or 11. Invariant: `rounds < MAX_ROUND_KEYS`.
    rounds: usize,
}

impl Rijndael {
    /// AES-128: standard key expansion, 10 rounds.
    pub const fn aes128(key: &[u8; 16]) -> Self {
        Self::from_enc(expand_key(key, 4), 10)
    }

    /// Rijndael with a 160-bit key (`Nk = 5`): 11 rounds, 48 round-key words, a
    /// `SubWord(RotWord(w)) ^ Rcon` step whenever `i mod 5 = 0` (spec 6.1).
    pub const fn rijndael160(key: &[u8; 20]) -> Self {
        Self::from_enc(expand_key(key, 5), 11)
    }

    /// AES-128 with the KMS V6 schedule change (spec 6.3): the standard expansion of `key`,
    /// then the [`V6_SCHEDULE_CHANGE`] XORs. Encryption and decryption both use the changed
    /// round keys.
    pub const fn aes128_kms_v6(key: &[u8; 16]) -> Self {
        let mut enc = expand_key(key, 4);
        let mut i = 0;
        while i < V6_SCHEDULE_CHANGE.len() {
            let (offset, mask) = V6_SCHEDULE_CHANGE[i];
            let shift = 24 - 8 * (offset % 4) as u32;
            enc[offset / 16][(offset % 16) / 4] ^= (mask as u32) << shift;
            i += 1;
        }
        Self::from_enc(enc, 10)
    }

    const fn from_enc(enc: [[u32; 4]; MAX_ROUND_KEYS], rounds: usize) -> Self {
        let mut dec = [[0u32; 4]; MAX_ROUND_KEYS];
        dec[0] = enc[rounds];
        dec[rounds] = enc[0];
        let mut r = 1;
        while r < rounds {
            let mut c = 0;
            while c < 4 {
                dec[r][c] = inv_mix_column(enc[rounds - r][c]);
                c += 1;
            }
            r += 1;
        }
        Self { enc, dec, rounds }
    }

    /// Number of rounds `Nr`: 10 for 128-bit keys, 11 for 160-bit keys.
    pub const fn rounds(&self) -> usize {
        self.rounds
    }

    /// Encryption round key `i` (0..=`Nr`) in wire order, `None` past the last one.
    pub fn round_key(&self, i: usize) -> Option<[u8; 16]> {
        (i <= self.rounds).then(|| store(self.enc[i]))
    }

    /// Encrypts one block in place (FIPS-197 5.1).
    #[inline]
    pub fn encrypt(&self, block: &mut [u8; BLOCK_LEN]) {
        let [k0, k1, k2, k3] = self.enc[0];
        let [w0, w1, w2, w3] = load(block);
        let (mut s0, mut s1, mut s2, mut s3) = (w0 ^ k0, w1 ^ k1, w2 ^ k2, w3 ^ k3);
        for k in &self.enc[1..self.rounds] {
            let t0 = TE0[b0(s0)] ^ TE1[b1(s1)] ^ TE2[b2(s2)] ^ TE3[b3(s3)] ^ k[0];
            let t1 = TE0[b0(s1)] ^ TE1[b1(s2)] ^ TE2[b2(s3)] ^ TE3[b3(s0)] ^ k[1];
            let t2 = TE0[b0(s2)] ^ TE1[b1(s3)] ^ TE2[b2(s0)] ^ TE3[b3(s1)] ^ k[2];
            let t3 = TE0[b0(s3)] ^ TE1[b1(s0)] ^ TE2[b2(s1)] ^ TE3[b3(s2)] ^ k[3];
            (s0, s1, s2, s3) = (t0, t1, t2, t3);
        }
        // Last round: SubBytes + ShiftRows, no MixColumns. `rounds < MAX_ROUND_KEYS` by
        // construction, so the index is in bounds.
        let k = &self.enc[self.rounds];
        *block = store([
            sub4(&SBOX, s0, s1, s2, s3) ^ k[0],
            sub4(&SBOX, s1, s2, s3, s0) ^ k[1],
            sub4(&SBOX, s2, s3, s0, s1) ^ k[2],
            sub4(&SBOX, s3, s0, s1, s2) ^ k[3],
        ]);
    }

    /// Decrypts one block in place (equivalent inverse cipher, FIPS-197 5.3.5).
    #[inline]
    pub fn decrypt(&self, block: &mut [u8; BLOCK_LEN]) {
        let [k0, k1, k2, k3] = self.dec[0];
        let [w0, w1, w2, w3] = load(block);
        let (mut s0, mut s1, mut s2, mut s3) = (w0 ^ k0, w1 ^ k1, w2 ^ k2, w3 ^ k3);
        for k in &self.dec[1..self.rounds] {
            let t0 = TD0[b0(s0)] ^ TD1[b1(s3)] ^ TD2[b2(s2)] ^ TD3[b3(s1)] ^ k[0];
            let t1 = TD0[b0(s1)] ^ TD1[b1(s0)] ^ TD2[b2(s3)] ^ TD3[b3(s2)] ^ k[1];
            let t2 = TD0[b0(s2)] ^ TD1[b1(s1)] ^ TD2[b2(s0)] ^ TD3[b3(s3)] ^ k[2];
            let t3 = TD0[b0(s3)] ^ TD1[b1(s2)] ^ TD2[b2(s1)] ^ TD3[b3(s0)] ^ k[3];
            (s0, s1, s2, s3) = (t0, t1, t2, t3);
        }
        // `rounds < MAX_ROUND_KEYS` by construction.
        let k = &self.dec[self.rounds];
        *block = store([
            sub4(&INV_SBOX, s0, s3, s2, s1) ^ k[0],
            sub4(&INV_SBOX, s1, s0, s3, s2) ^ k[1],
            sub4(&INV_SBOX, s2, s1, s0, s3) ^ k[2],
            sub4(&INV_SBOX, s3, s2, s1, s0) ^ k[3],
        ]);
    }
}

impl BlockCipher128 for Rijndael {
    fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        self.encrypt(block);
    }
    fn decrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        self.decrypt(block);
    }
    fn decrypt_blocks(&self, blocks: &mut [[u8; BLOCK_LEN]]) {
        if blocks.len() > 1 && hardware_rounds() {
            self.decrypt_blocks_hw(blocks);
        } else {
            for block in blocks {
                self.decrypt(block);
            }
        }
    }
}

impl Rijndael {
    /// [`BlockCipher128::decrypt_blocks`] with the CPU's AES instructions, eight blocks per
    /// round call (`aes::hazmat`, which takes any round keys, so it runs the V6 and
    /// Rijndael-160 schedules too). One block at a time this gains nothing over the tables:
    /// the per-call cost of the hazmat functions eats it.
    ///
    /// The equivalent inverse cipher's rounds are `AESDEC` with the `dec` keys. There is no
    /// hazmat call for the last round (no InvMixColumns): a full round with a zero key,
    /// then MixColumns, leaves InvShiftRows + InvSubBytes, and the last key is XORed after.
    fn decrypt_blocks_hw(&self, blocks: &mut [[u8; BLOCK_LEN]]) {
        use aes::hazmat::{Block, Block8};
        let rounds = self.rounds.min(MAX_ROUND_KEYS - 1);
        let mut keys = [Block8::default(); MAX_ROUND_KEYS];
        for (par, key) in keys.iter_mut().zip(&self.dec).take(rounds + 1) {
            *par = Block8::from([Block::from(store(*key)); 8]);
        }
        let first = store(self.dec[0]);
        let last = store(self.dec[rounds]);
        for chunk in blocks.chunks_mut(8) {
            let mut state = Block8::default();
            for (s, b) in state.iter_mut().zip(chunk.iter()) {
                let mut b = *b;
                xor_into(&mut b, &first);
                *s = Block::from(b);
            }
            for key in &keys[1..rounds] {
                aes::hazmat::equiv_inv_cipher_round_par(&mut state, key);
            }
            aes::hazmat::equiv_inv_cipher_round_par(&mut state, &Block8::default());
            for (s, b) in state.iter_mut().zip(chunk.iter_mut()) {
                aes::hazmat::mix_columns(s);
                b.copy_from_slice(s);
                xor_into(b, &last);
            }
        }
    }
}

/// Whether the CPU has AES round instructions (asked once; `std` caches the answer).
fn hardware_rounds() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        false
    }
}

/// `MAC4(m)` (spec 6.2): CBC-MAC with [`V4_CIPHER`] and a zero IV over `m || 80 || 00*k`,
/// padded to a whole number of blocks. The padding is always added, so a message that is
/// already a multiple of 16 bytes gets a full block `80 00 .. 00`.
pub fn mac4(msg: &[u8]) -> [u8; BLOCK_LEN] {
    let mut state = [0u8; BLOCK_LEN];
    let mut blocks = msg.chunks_exact(BLOCK_LEN);
    for block in &mut blocks {
        xor_into(&mut state, block);
        V4_CIPHER.encrypt(&mut state);
    }
    let tail = blocks.remainder();
    let mut last = [0u8; BLOCK_LEN];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    xor_into(&mut state, &last);
    V4_CIPHER.encrypt(&mut state);
    state
}

/// `Salt(X) = D_K(X)`: the single-block decryption of an IV (spec 6.3). `S_req` and
/// `S_resp` of spec 7.4/7.5.
pub fn salt<C: BlockCipher128 + ?Sized>(cipher: &C, iv: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    let mut out = *iv;
    cipher.decrypt_block(&mut out);
    out
}

/// Appends PKCS#7 padding to `buf[start..]` (1 to 16 bytes, each equal to the pad length;
/// spec 6.3) and CBC-encrypts that region in place with `iv`. A `start` past the end is
/// treated as the end (the region is empty and becomes one block of padding).
pub fn cbc_encrypt_padded<C: BlockCipher128 + ?Sized>(
    cipher: &C,
    iv: &[u8; BLOCK_LEN],
    buf: &mut Vec<u8>,
    start: usize,
) {
    let start = start.min(buf.len());
    let pad = BLOCK_LEN - (buf.len() - start) % BLOCK_LEN;
    buf.resize(buf.len() + pad, pad as u8);
    let mut chain = *iv;
    for chunk in buf[start..].chunks_exact_mut(BLOCK_LEN) {
        xor_into(&mut chain, chunk);
        cipher.encrypt_block(&mut chain);
        chunk.copy_from_slice(&chain);
    }
}

/// CBC-decrypts `buf` in place with `iv`, without looking at padding.
///
/// # Errors
/// [`CryptoError::BadLength`] when `buf` is empty or not a whole number of blocks; `buf` is
/// left untouched then.
pub fn cbc_decrypt<C: BlockCipher128 + ?Sized>(
    cipher: &C,
    iv: &[u8; BLOCK_LEN],
    buf: &mut [u8],
) -> Result<(), CryptoError> {
    if buf.is_empty() || !buf.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::BadLength { len: buf.len() });
    }
    // P_i = D(C_i) ^ C_(i-1): decrypt a run of blocks together, then chain.
    const RUN: usize = 8;
    let mut prev = *iv;
    for run in buf.chunks_mut(RUN * BLOCK_LEN) {
        let n = run.len() / BLOCK_LEN;
        let mut cipher_text = [[0u8; BLOCK_LEN]; RUN];
        for (c, b) in cipher_text.iter_mut().zip(run.chunks_exact(BLOCK_LEN)) {
            c.copy_from_slice(b);
        }
        let mut plain = cipher_text;
        cipher.decrypt_blocks(&mut plain[..n]);
        for ((p, b), c) in plain
            .iter_mut()
            .zip(run.chunks_exact_mut(BLOCK_LEN))
            .zip(&cipher_text)
        {
            xor_into(p, &prev);
            b.copy_from_slice(p);
            prev = *c;
        }
    }
    Ok(())
}

/// Length of `plain` without its PKCS#7 padding (spec 6.3).
///
/// # Errors
/// [`CryptoError::BadPadding`] unless the last byte `n` is 1..=16, at most `plain.len()`,
/// and the last `n` bytes all equal `n`.
pub fn pkcs7_unpadded_len(plain: &[u8]) -> Result<usize, CryptoError> {
    let Some(&n) = plain.last() else {
        return Err(CryptoError::BadPadding);
    };
    let n = usize::from(n);
    if n == 0 || n > BLOCK_LEN || n > plain.len() {
        return Err(CryptoError::BadPadding);
    }
    let body = plain.len() - n;
    if plain[body..].iter().any(|&b| usize::from(b) != n) {
        return Err(CryptoError::BadPadding);
    }
    Ok(body)
}

/// CBC-decrypts `buf` in place and returns the plaintext length without PKCS#7 padding.
///
/// # Errors
/// [`CryptoError::BadLength`] (see [`cbc_decrypt`]) or [`CryptoError::BadPadding`].
pub fn cbc_decrypt_padded<C: BlockCipher128 + ?Sized>(
    cipher: &C,
    iv: &[u8; BLOCK_LEN],
    buf: &mut [u8],
) -> Result<usize, CryptoError> {
    cbc_decrypt(cipher, iv, buf)?;
    pkcs7_unpadded_len(buf)
}

/// `SHA-256(R)`: the `RandomHash` field of V5/V6 responses (spec 7.4).
pub fn random_hash(random: &[u8; BLOCK_LEN]) -> [u8; 32] {
    Sha256::digest(random).into()
}

/// The V6 HMAC time slot for request time `t` and slot delta `delta` (spec 7.5):
/// `((t div C1) * C2 + C3 + delta * C1) mod 2^64`. Hosts use `delta = 0`; clients accept
/// -1, 0 and +1.
pub fn v6_time_slot(request_time: FileTime, delta: i8) -> u64 {
    (request_time.0 / V6_SLOT_LEN)
        .wrapping_mul(V6_SLOT_MUL)
        .wrapping_add(V6_SLOT_ADD)
        .wrapping_add((i64::from(delta) as u64).wrapping_mul(V6_SLOT_LEN))
}

/// The V6 HMAC key: the last 16 bytes of `SHA-256(slot as 8 bytes little-endian)`
/// (spec 7.5).
pub fn v6_hmac_key(request_time: FileTime, delta: i8) -> [u8; 16] {
    let digest = Sha256::digest(v6_time_slot(request_time, delta).to_le_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[16..]);
    key
}

/// The V6 `Hmac` field (spec 7.5): the last 16 bytes of
/// `HMAC-SHA-256(v6_hmac_key(t, delta), S_resp || signed)`, where `signed` is the response
/// body up to the `Hmac` field (`body[..116 + P]`).
pub fn v6_hmac(
    request_time: FileTime,
    delta: i8,
    s_resp: &[u8; BLOCK_LEN],
    signed: &[u8],
) -> [u8; 16] {
    // HMAC zero-pads keys shorter than the SHA-256 block; doing it here lets us use the
    // infallible fixed-size constructor.
    let mut key = [0u8; 64];
    key[..16].copy_from_slice(&v6_hmac_key(request_time, delta));
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&key.into());
    mac.update(s_resp);
    mac.update(signed);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[16..]);
    out
}

// ---------------------------------------------------------------------------------------
// Tables and key expansion, all evaluated at compile time.

/// The Rijndael S-box (FIPS-197 figure 7): `SBOX[x]` is the affine transform of the
/// multiplicative inverse of `x` in GF(2^8) (0 maps to 0 before the transform).
/// `tests::sbox_matches_its_definition` recomputes it.
const SBOX: [u8; 256] = [
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
];

/// The inverse S-box: `INV_SBOX[SBOX[x]] == x`.
const INV_SBOX: [u8; 256] = {
    let mut inv = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        inv[SBOX[x] as usize] = x as u8;
        x += 1;
    }
    inv
};

/// Encryption table for state row 0: `TE0[x]` is the MixColumns column `(2, 1, 1, 3) * S(x)`
/// as a big-endian word. `TE1..TE3` are the same rotated by 8, 16 and 24 bits, for rows 1-3
/// (ShiftRows is folded into which state word feeds which table).
const TE0: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut x = 0;
    while x < 256 {
        let s = SBOX[x];
        t[x] = u32::from_be_bytes([gmul(s, 2), s, s, gmul(s, 3)]);
        x += 1;
    }
    t
};
/// [`TE0`] rotated right by 8 bits: `(3, 2, 1, 1) * S(x)`.
const TE1: [u32; 256] = rotate_table(&TE0, 8);
/// [`TE0`] rotated right by 16 bits: `(1, 3, 2, 1) * S(x)`.
const TE2: [u32; 256] = rotate_table(&TE0, 16);
/// [`TE0`] rotated right by 24 bits: `(1, 1, 3, 2) * S(x)`.
const TE3: [u32; 256] = rotate_table(&TE0, 24);

/// Decryption table for row 0: `TD0[x]` is the InvMixColumns column `(14, 9, 13, 11) *
/// InvS(x)` as a big-endian word; `TD1..TD3` are its rotations.
const TD0: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut x = 0;
    while x < 256 {
        let s = INV_SBOX[x];
        t[x] = u32::from_be_bytes([gmul(s, 14), gmul(s, 9), gmul(s, 13), gmul(s, 11)]);
        x += 1;
    }
    t
};
/// [`TD0`] rotated right by 8 bits.
const TD1: [u32; 256] = rotate_table(&TD0, 8);
/// [`TD0`] rotated right by 16 bits.
const TD2: [u32; 256] = rotate_table(&TD0, 16);
/// [`TD0`] rotated right by 24 bits.
const TD3: [u32; 256] = rotate_table(&TD0, 24);

const fn rotate_table(t: &[u32; 256], bits: u32) -> [u32; 256] {
    let mut out = [0u32; 256];
    let mut x = 0;
    while x < 256 {
        out[x] = t[x].rotate_right(bits);
        x += 1;
    }
    out
}

/// Multiplication by `x` in GF(2^8) modulo `x^8 + x^4 + x^3 + x + 1`.
const fn xtime(b: u8) -> u8 {
    (b << 1) ^ if b & 0x80 != 0 { 0x1b } else { 0 }
}

/// Multiplication in GF(2^8).
const fn gmul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        a = xtime(a);
        b >>= 1;
    }
    p
}

const fn sub_word(w: u32) -> u32 {
    let b = w.to_be_bytes();
    u32::from_be_bytes([
        SBOX[b[0] as usize],
        SBOX[b[1] as usize],
        SBOX[b[2] as usize],
        SBOX[b[3] as usize],
    ])
}

/// InvMixColumns of one round-key word, via the decryption tables (`TD*` include InvS, so
/// the S-box lookup cancels it).
const fn inv_mix_column(w: u32) -> u32 {
    let b = w.to_be_bytes();
    TD0[SBOX[b[0] as usize] as usize]
        ^ TD1[SBOX[b[1] as usize] as usize]
        ^ TD2[SBOX[b[2] as usize] as usize]
        ^ TD3[SBOX[b[3] as usize] as usize]
}

/// FIPS-197 5.2 key expansion for `nk` 32-bit key words (4 or 5 here; `key.len() == 4 *
/// nk`), grouped into round keys of four words. Unused trailing round keys stay zero.
const fn expand_key(key: &[u8], nk: usize) -> [[u32; 4]; MAX_ROUND_KEYS] {
    let total = 4 * (nk + 7);
    let mut w = [0u32; 4 * MAX_ROUND_KEYS];
    let mut i = 0;
    while i < nk {
        w[i] = u32::from_be_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]);
        i += 1;
    }
    let mut rcon = 1u8;
    while i < total {
        let mut t = w[i - 1];
        if i % nk == 0 {
            t = sub_word(t.rotate_left(8)) ^ ((rcon as u32) << 24);
            rcon = xtime(rcon);
        }
        w[i] = w[i - nk] ^ t;
        i += 1;
    }
    let mut out = [[0u32; 4]; MAX_ROUND_KEYS];
    let mut j = 0;
    while j < 4 * MAX_ROUND_KEYS {
        out[j / 4][j % 4] = w[j];
        j += 1;
    }
    out
}

#[inline(always)]
fn b0(w: u32) -> usize {
    (w >> 24) as u8 as usize
}
#[inline(always)]
fn b1(w: u32) -> usize {
    (w >> 16) as u8 as usize
}
#[inline(always)]
fn b2(w: u32) -> usize {
    (w >> 8) as u8 as usize
}
#[inline(always)]
fn b3(w: u32) -> usize {
    w as u8 as usize
}

/// One output word of a last round: row `r` of the result comes from word `r` of the
/// (shifted) inputs, through `sbox`.
#[inline(always)]
fn sub4(sbox: &[u8; 256], a: u32, b: u32, c: u32, d: u32) -> u32 {
    u32::from_be_bytes([sbox[b0(a)], sbox[b1(b)], sbox[b2(c)], sbox[b3(d)]])
}

#[inline(always)]
fn load(b: &[u8; BLOCK_LEN]) -> [u32; 4] {
    [
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
    ]
}

#[inline(always)]
fn store(w: [u32; 4]) -> [u8; BLOCK_LEN] {
    let mut out = [0u8; BLOCK_LEN];
    out[0..4].copy_from_slice(&w[0].to_be_bytes());
    out[4..8].copy_from_slice(&w[1].to_be_bytes());
    out[8..12].copy_from_slice(&w[2].to_be_bytes());
    out[12..16].copy_from_slice(&w[3].to_be_bytes());
    out
}

/// `acc ^= other`, over `min(16, other.len())` bytes.
#[inline(always)]
pub(crate) fn xor_into(acc: &mut [u8; BLOCK_LEN], other: &[u8]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h16(s: &str) -> [u8; 16] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    const COUNTING: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn enc<C: BlockCipher128>(c: &C, block: [u8; 16]) -> String {
        let mut b = block;
        c.encrypt_block(&mut b);
        let mut back = b;
        c.decrypt_block(&mut back);
        assert_eq!(back, block, "decrypt(encrypt(x)) != x");
        hex::encode(b)
    }

    #[test]
    fn sbox_matches_its_definition() {
        for x in 0..=255u8 {
            let inv = if x == 0 {
                0
            } else {
                (1..=255u8).find(|&y| gmul(x, y) == 1).unwrap()
            };
            let affine = inv
                ^ inv.rotate_left(1)
                ^ inv.rotate_left(2)
                ^ inv.rotate_left(3)
                ^ inv.rotate_left(4)
                ^ 0x63;
            assert_eq!(SBOX[usize::from(x)], affine, "S-box entry {x:#04x}");
            assert_eq!(INV_SBOX[usize::from(SBOX[usize::from(x)])], x);
        }
    }

    #[test]
    fn kat_fips197_c1_aes128() {
        let c = Rijndael::aes128(&COUNTING);
        let pt = h16("00112233445566778899aabbccddeeff");
        assert_eq!(enc(&c, pt), "69c4e0d86a7b0430d8cdb78070b4c55a");
        assert_eq!(c.rounds(), 10);
    }

    #[test]
    fn kat_v4_rijndael160() {
        assert_eq!(V4_CIPHER.rounds(), 11);
        assert_eq!(enc(&V4_CIPHER, [0; 16]), "933030f10e2e7782b80915d5778a4957");
        assert_eq!(
            enc(&V4_CIPHER, COUNTING),
            "28916e4a0ee525b42cf393cae0f4dc9a"
        );
    }

    #[test]
    fn kat_v5_aes_crate_and_in_crate_agree() {
        assert_eq!(
            enc(v5_cipher(), COUNTING),
            "8d77cb43633c62cbe1d15d570c23dc75"
        );
        assert_eq!(
            enc(&Rijndael::aes128(&V5_KEY), COUNTING),
            "8d77cb43633c62cbe1d15d570c23dc75"
        );
    }

    #[test]
    fn kat_v6_blocks() {
        assert_eq!(enc(&V6_CIPHER, [0; 16]), "8ca59de0c483c04aa7026a22d6dd208e");
        assert_eq!(
            enc(&V6_CIPHER, COUNTING),
            "ca89ca11b2c4e77a94e806af17136b38"
        );
    }

    #[test]
    fn kat_v6_round_keys_after_the_change() {
        let rk = |i| hex::encode(V6_CIPHER.round_key(i).unwrap());
        assert_eq!(rk(4), "0530e12e111e2b4d3f6a5901edca6094");
        assert_eq!(rk(6), "63dec9456920217355b4904484ea41e7");
        assert_eq!(rk(8), "efc82943cfb5552a5e7cb9074b5f14cd");
        // Only the first byte of those three round keys differs from plain AES-128.
        let plain = Rijndael::aes128(&V6_KEY);
        for i in 0..=10 {
            let (a, b) = (plain.round_key(i).unwrap(), V6_CIPHER.round_key(i).unwrap());
            let mask = match i {
                4 => 0x73,
                6 => 0x09,
                8 => 0xE4,
                _ => 0,
            };
            assert_eq!(a[0] ^ b[0], mask, "round key {i}");
            assert_eq!(a[1..], b[1..], "round key {i}");
        }
        assert_eq!(V6_CIPHER.round_key(11), None);
    }

    #[test]
    fn kat_mac4() {
        assert_eq!(hex::encode(mac4(b"")), "d144963029e2bd12f9970c9f52b27f09");
        assert_eq!(
            hex::encode(mac4(&[0; 16])),
            "2a090d7c1155251ab86445447d060335"
        );
        assert_eq!(
            hex::encode(mac4(&[0; 236])),
            "4c1b4de4008508d66d9ed22963ae52b2"
        );
    }

    #[test]
    fn kat_v6_hmac_spec_12_5() {
        let t = FileTime(134_397_843_810_000_000);
        assert_eq!(v6_time_slot(t, 0), 0x3319_3739_dbdf_d4de);
        assert_eq!(
            v6_time_slot(t, 1),
            0x3319_3739_dbdf_d4de_u64.wrapping_add(V6_SLOT_LEN)
        );
        assert_eq!(
            v6_time_slot(t, -1),
            0x3319_3739_dbdf_d4de_u64.wrapping_sub(V6_SLOT_LEN)
        );
        assert_eq!(
            hex::encode(v6_hmac_key(t, 0)),
            "a555d068f3e5420dfc0666ba5094ca8d"
        );
        let s_resp = h16("2e8ea0ad3b75204ce69bdc69d33e7837");
        assert_eq!(
            salt(&V6_CIPHER, &h16("de0a15a21676e06e7a5c837296cceeab")),
            s_resp
        );
        assert_eq!(
            salt(&V6_CIPHER, &h16("b1bbb8a2975243e188842bb41da47d7d")),
            h16("8b22eb4d0ba278af442df8b53d616f06")
        );
        // Response body of spec 12.5 up to the Hmac field (216 bytes).
        let body = hex::decode(
            "0000060064000000300033003600310032002d00300030003200300036002d003500360038002d00\
             3500370039003500360036002d00300033002d0031003000360033002d0031003400330039003300\
             2e0030003000300030002d0032003000360032003000320030000000c7d014db746d3e47ba6c45af\
             ecc9a68e809cdf7a207add01320000007800000060270000c9912df1f2af22189cf0a5427f5d89ab\
             3956b2d99f0a10ce2ea63096a7381f0f0d9649f5a49fc75c5b25b42df9a641fe3a1c049600b60076\
             8b22eb4d0ba278af442df8b53d616f06",
        )
        .unwrap();
        assert_eq!(body.len(), 216);
        assert_eq!(
            hex::encode(v6_hmac(t, 0, &s_resp, &body)),
            "87f2bc5213bda19abe4f1d2d99f22e62"
        );
        assert_ne!(
            hex::encode(v6_hmac(t, 1, &s_resp, &body)),
            "87f2bc5213bda19abe4f1d2d99f22e62"
        );
        let r = h16("42b3c6bcf90d5ab7d8dd5df7423ce6ad");
        assert_eq!(
            hex::encode(random_hash(&r)),
            "3956b2d99f0a10ce2ea63096a7381f0f0d9649f5a49fc75c5b25b42df9a641fe"
        );
    }

    #[test]
    fn cbc_round_trip_and_padding_lengths() {
        for len in 0..=48usize {
            let plain: Vec<u8> = (0..len as u8).collect();
            let mut buf = b"hdr".to_vec();
            buf.extend_from_slice(&plain);
            cbc_encrypt_padded(&V6_CIPHER, &[7; 16], &mut buf, 3);
            let pad = 16 - len % 16;
            assert_eq!(buf.len(), 3 + len + pad, "len {len}");
            let n = cbc_decrypt_padded(&V6_CIPHER, &[7; 16], &mut buf[3..]).unwrap();
            assert_eq!(n, len);
            assert_eq!(&buf[3..3 + n], &plain[..]);
            assert!(buf[3 + n..].iter().all(|&b| usize::from(b) == pad));
        }
    }

    #[test]
    fn cbc_matches_salt_view_of_reference_hosts() {
        // Spec 6.3: CBC-decrypting IV || C with a zero IV yields Salt(IV) || P.
        let iv = [0x42; 16];
        let mut ct = vec![1u8; 20];
        cbc_encrypt_padded(&V6_CIPHER, &iv, &mut ct, 0);
        let mut joined = iv.to_vec();
        joined.extend_from_slice(&ct);
        cbc_decrypt(&V6_CIPHER, &[0; 16], &mut joined).unwrap();
        assert_eq!(joined[..16], salt(&V6_CIPHER, &iv));
        assert_eq!(joined[16..36], [1u8; 20]);
    }

    #[test]
    fn cbc_rejects_bad_length() {
        let mut empty: [u8; 0] = [];
        assert_eq!(
            cbc_decrypt(&V6_CIPHER, &[0; 16], &mut empty),
            Err(CryptoError::BadLength { len: 0 })
        );
        let mut odd = [0u8; 17];
        assert_eq!(
            cbc_decrypt_padded(&V6_CIPHER, &[0; 16], &mut odd),
            Err(CryptoError::BadLength { len: 17 })
        );
        assert_eq!(odd, [0u8; 17], "buffer untouched on error");
    }

    #[test]
    fn pkcs7_rejections() {
        assert_eq!(pkcs7_unpadded_len(&[]), Err(CryptoError::BadPadding));
        assert_eq!(pkcs7_unpadded_len(&[1, 2, 0]), Err(CryptoError::BadPadding));
        assert_eq!(pkcs7_unpadded_len(&[17; 32]), Err(CryptoError::BadPadding));
        assert_eq!(pkcs7_unpadded_len(&[3, 3]), Err(CryptoError::BadPadding));
        assert_eq!(
            pkcs7_unpadded_len(&[9, 2, 3, 3]),
            Err(CryptoError::BadPadding)
        );
        assert_eq!(pkcs7_unpadded_len(&[9, 3, 3, 3]), Ok(1));
        assert_eq!(pkcs7_unpadded_len(&[16; 16]), Ok(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn in_crate_aes128_matches_aes_crate(key in any::<[u8; 16]>(), block in any::<[u8; 16]>()) {
            let ours = Rijndael::aes128(&key);
            let theirs = Aes128Cipher::new(&key);
            let (mut a, mut b) = (block, block);
            ours.encrypt(&mut a);
            theirs.encrypt_block(&mut b);
            prop_assert_eq!(a, b);
            ours.decrypt(&mut a);
            theirs.decrypt_block(&mut b);
            prop_assert_eq!(a, block);
            prop_assert_eq!(b, block);
            // And decryption of an arbitrary block agrees, too.
            let (mut c, mut d) = (block, block);
            ours.decrypt(&mut c);
            theirs.decrypt_block(&mut d);
            prop_assert_eq!(c, d);
        }

        #[test]
        fn rijndael160_and_v6_decrypt_inverts_encrypt(
            key in any::<[u8; 20]>(),
            block in any::<[u8; 16]>(),
        ) {
            let short: [u8; 16] = key[..16].try_into().unwrap();
            for c in [Rijndael::rijndael160(&key), Rijndael::aes128_kms_v6(&short)] {
                let mut b = block;
                c.encrypt(&mut b);
                c.decrypt(&mut b);
                prop_assert_eq!(b, block);
            }
        }

        /// The eight-at-a-time hardware path (taken where the CPU has AES instructions, as
        /// on every CI machine) gives what the tables give one block at a time, for every
        /// schedule and for runs that are not a multiple of eight.
        #[test]
        fn decrypt_blocks_matches_one_block_at_a_time(
            key in any::<[u8; 20]>(),
            blocks in proptest::collection::vec(any::<[u8; 16]>(), 0..20),
        ) {
            let short: [u8; 16] = key[..16].try_into().unwrap();
            for c in [
                Rijndael::rijndael160(&key),
                Rijndael::aes128_kms_v6(&short),
                Rijndael::aes128(&short),
            ] {
                let mut together = blocks.clone();
                c.decrypt_blocks(&mut together);
                let mut alone = blocks.clone();
                for b in &mut alone {
                    c.decrypt(b);
                }
                prop_assert_eq!(together, alone);
            }
        }
    }
}
