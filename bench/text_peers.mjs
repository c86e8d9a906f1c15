// The automerge-paper trace through Yjs, Loro and Automerge, edit by edit, each checked
// against endContent: what bench/text_compare.sh prints beside mlr-text-bench. Run from a
// directory whose node_modules holds yjs, loro-crdt and @automerge/automerge.
// Usage: node text_peers.mjs TRACE.json.gz [ROUNDS]
//        node --expose-gc text_peers.mjs TRACE.json.gz held NAME
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import * as Y from "yjs";
import { LoroDoc } from "loro-crdt";
import * as A from "@automerge/automerge";

const trace = JSON.parse(gunzipSync(readFileSync(process.argv[2])).toString("utf8"));
const rounds = Number(process.argv[3] || 3);
const patches = trace.txns.flatMap((t) => t.patches);
const want = trace.endContent;

function yjsLocal() {
  const doc = new Y.Doc();
  const t = doc.getText("t");
  for (const [pos, del, ins] of patches) {
    if (del > 0) t.delete(pos, del);
    if (ins) t.insert(pos, ins);
  }
  return { ok: t.toString() === want, bytes: Y.encodeStateAsUpdate(doc).length, keep: doc };
}

function yjsRemote() {
  const a = new Y.Doc();
  const b = new Y.Doc();
  a.on("update", (u) => Y.applyUpdate(b, u));
  const t = a.getText("t");
  for (const [pos, del, ins] of patches) {
    if (del > 0) t.delete(pos, del);
    if (ins) t.insert(pos, ins);
  }
  return { ok: b.getText("t").toString() === want, bytes: Y.encodeStateAsUpdate(b).length, keep: b };
}

function loro() {
  const doc = new LoroDoc();
  const t = doc.getText("t");
  for (const [pos, del, ins] of patches) {
    if (del > 0) t.delete(pos, del);
    if (ins) t.insert(pos, ins);
  }
  doc.commit();
  return { ok: t.toString() === want, bytes: doc.export({ mode: "snapshot" }).length, keep: doc };
}

function automerge() {
  let doc = A.from({ t: "" });
  for (const [pos, del, ins] of patches)
    doc = A.change(doc, (d) => A.splice(d, ["t"], pos, del, ins || undefined));
  return { ok: doc.t === want, bytes: A.save(doc).length, keep: doc };
}

// What a live document holds, measured in a process of its own that builds only it
// (`held NAME`): the heap, external and ArrayBuffer memory (WebAssembly's included: for
// Loro that is its linear memory's growth, which may keep freed space) it adds, after a
// full collection, while it is still referenced. Needs node --expose-gc.
function held(fn) {
  const total = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external + m.arrayBuffers;
  };
  global.gc();
  global.gc();
  const before = total();
  const r = fn();
  global.gc();
  global.gc();
  const bytes = total() - before;
  return r.keep && r.ok ? bytes / 1e6 : NaN;
}

const runs = [
  ["yjs-local", yjsLocal, rounds],
  ["yjs-remote", yjsRemote, rounds],
  ["loro", loro, rounds],
  ["automerge", automerge, 1], // about 10 s a round
];
if (process.argv[3] === "held") {
  const [, fn] = runs.find(([name]) => name === process.argv[4]);
  console.log(`${process.argv[4]} ${held(fn).toFixed(1)}`);
  process.exit(0);
}
for (const [name, fn, n] of runs) {
  const rates = [];
  let last;
  for (let r = 0; r < n; ++r) {
    const t = process.hrtime.bigint();
    last = fn();
    rates.push(patches.length / (Number(process.hrtime.bigint() - t) / 1e9));
  }
  rates.sort((x, y) => x - y);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(
    `${name} ${Math.round(median)} ${last.bytes} ${last.ok ? "yes" : "NO"} ` +
      `${Math.round(process.memoryUsage().rss / 1e6)}`,
  );
}
