//! report.html's one stylesheet, inline (the page fetches nothing); also used by
//! `kmsload simulate`'s page.

/// The page's style sheet: light by default, dark with `prefers-color-scheme: dark`, print
/// in black on white with charts kept whole.
pub(crate) const CSS: &str = r#"
:root{--bg:#fff;--fg:#1b1f24;--muted:#5b6570;--grid:#e3e7eb;--frame:#8a949e;--panel:#f5f7f9;
--band:rgba(214,120,0,.14);--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;
--c1:#1f6feb;--c2:#d4500a;--c3:#1a7f37;--c4:#8250df;--c5:#0f8b8d;--c6:#bf8700;--c7:#cf222e;--c8:#57606a;}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--fg:#e6edf3;--muted:#9aa6b2;--grid:#262d34;
--frame:#6e7781;--panel:#161b22;--band:rgba(255,166,87,.16);--ok:#3fb950;--bad:#ff7b72;--warn:#d29922;
--c1:#58a6ff;--c2:#ffa657;--c3:#3fb950;--c4:#d2a8ff;--c5:#56d4dd;--c6:#e3b341;--c7:#ff7b72;--c8:#8b949e;}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:1.7em;margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid var(--grid);padding-bottom:.2em}
h3{margin-bottom:.3em}
a{color:var(--c1)}code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.muted{color:var(--muted)}.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.verdict{display:inline-block;font-weight:700;padding:.25em .7em;border-radius:4px;border:2px solid currentColor;margin:.2em 0}
.desc{margin:.3em 0 .8em}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.4em 1.5em;margin:.6em 0}
.facts>div{background:var(--panel);padding:.4em .6em;border-radius:4px}
dt{font-size:.8em;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.knee-sentence{font-size:1.15em;font-weight:600;border-left:4px solid var(--ok);padding:.3em .8em;background:var(--panel)}
nav{margin:1em 0;color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
th,td{border-bottom:1px solid var(--grid);padding:.3em .5em;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td:not(:first-child){font-variant-numeric:tabular-nums}
.codes td p{margin:0 0 .25em}.codes td:not(:last-child){white-space:nowrap}
figure{margin:1em 0 1.6em;break-inside:avoid;page-break-inside:avoid}
figcaption{font-size:.88em;color:var(--muted);margin-top:.2em}
svg.chart{width:100%;height:auto;display:block;font-size:12px}
svg .axis text{fill:var(--muted)}svg .axis .label{fill:var(--fg);font-weight:600}
svg .grid{stroke:var(--grid);stroke-width:1}svg .frame{stroke:var(--frame);stroke-width:1}
svg .band{fill:var(--band)}
svg .line{fill:none;stroke-width:2;stroke-linejoin:round}svg .dashed{stroke-dasharray:6 4}
svg .rule{stroke-width:1.5;stroke-dasharray:5 4}svg .rule-label,svg .marker-label{font-weight:600}
svg .marker{stroke:var(--bg);stroke-width:2}
.c1{stroke:var(--c1);fill:var(--c1);background:var(--c1);color:var(--c1)}.c2{stroke:var(--c2);fill:var(--c2);background:var(--c2);color:var(--c2)}
.c3{stroke:var(--c3);fill:var(--c3);background:var(--c3);color:var(--c3)}.c4{stroke:var(--c4);fill:var(--c4);background:var(--c4);color:var(--c4)}
.c5{stroke:var(--c5);fill:var(--c5);background:var(--c5);color:var(--c5)}.c6{stroke:var(--c6);fill:var(--c6);background:var(--c6);color:var(--c6)}
.c7{stroke:var(--c7);fill:var(--c7);background:var(--c7);color:var(--c7)}.c8{stroke:var(--c8);fill:var(--c8);background:var(--c8);color:var(--c8)}
svg .line.c1,svg .line.c2,svg .line.c3,svg .line.c4,svg .line.c5,svg .line.c6,svg .line.c7,svg .line.c8{fill:none}
svg .ok{stroke:var(--ok);fill:var(--ok)}svg .bad{stroke:var(--bad);fill:var(--bad)}
svg .warn{stroke:var(--warn);fill:var(--warn)}svg .muted{stroke:var(--muted);fill:var(--muted)}
svg text.rule-label,svg text.marker-label{stroke:var(--bg);stroke-width:4px;paint-order:stroke;stroke-linejoin:round}
svg .marker.ok,svg .marker.bad{stroke:var(--bg)}
.legend{list-style:none;padding:0;margin:.2em 0 0 70px;display:flex;flex-wrap:wrap;gap:.2em 1.2em;font-size:.88em}
.legend .swatch{display:inline-block;width:18px;height:4px;margin:0 .4em .2em 0;vertical-align:middle;border-radius:2px}
.legend .swatch.muted{background:var(--muted)}
.legend .swatch.dashed{height:0;background:none;border-top:3px dashed currentColor}
footer{margin-top:3em;font-size:.8em;color:var(--muted)}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--grid:#ddd;--panel:#f4f4f4}
body{font-size:11pt}main{max-width:none;padding:0}nav{display:none}
section{break-before:auto}h2{break-after:avoid}a{color:inherit;text-decoration:none}
.legend .swatch,.facts div,.knee-sentence{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"#;
