//! [`HostClients`]: the [`HostAttempt`] a client simulator needs, one [`Client`] per host
//! address (so a kept connection to the answering host is reused), the request given
//! before each attempt.

use std::net::SocketAddr;

use super::HostAttempt;
use crate::client::{Attempt, Client, Connector};
use crate::wire::RequestBase;

/// One [`Client`] per address, made by `make` on first use; the request of the next
/// attempt is given with [`HostClients::set_request`].
pub struct HostClients<C: Connector, F> {
    make: F,
    clients: Vec<Client<C>>,
    request: (RequestBase, [u8; 16]),
}

impl<C: Connector, F: FnMut(SocketAddr) -> Client<C>> HostClients<C, F> {
    /// Clients made by `make(addr)` (a connector, options, a tracer: the caller's choice),
    /// sending `base` with `iv` until [`Self::set_request`] says otherwise.
    pub fn new(make: F, base: RequestBase, iv: [u8; 16]) -> Self {
        Self {
            make,
            clients: Vec::new(),
            request: (base, iv),
        }
    }

    /// The request (and `IV_req`) the next attempts send.
    pub fn set_request(&mut self, base: RequestBase, iv: [u8; 16]) {
        self.request = (base, iv);
    }

    /// The client of `addr`, if one was made.
    pub fn client_mut(&mut self, addr: SocketAddr) -> Option<&mut Client<C>> {
        self.clients.iter_mut().find(|c| c.addr() == addr)
    }

    /// Closes every kept connection.
    pub fn disconnect_all(&mut self) {
        for c in &mut self.clients {
            c.disconnect();
        }
    }
}

impl<C, F> HostAttempt for HostClients<C, F>
where
    C: Connector,
    F: FnMut(SocketAddr) -> Client<C> + Send,
{
    fn attempt(&mut self, addr: SocketAddr) -> impl Future<Output = Attempt> + Send {
        let i = match self.clients.iter().position(|c| c.addr() == addr) {
            Some(i) => i,
            None => {
                self.clients.push((self.make)(addr));
                self.clients.len() - 1
            }
        };
        let client = &mut self.clients[i];
        let (base, iv) = &self.request;
        client.activate(base, *iv)
    }
}
