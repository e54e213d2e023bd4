// A small, real ActivityPub server built with Fedify (@fedify/fedify 1.5.9) for fedcop's
// interop tests.  It has one actor, `probe` (a Person), and a plain-JSON control API under
// /_control/ that tests use to make probe follow someone and to read back what probe's inboxes
// received.  Driven from Python by tests/support/fedify_peer.py.
//
//   node server.mjs --host 127.0.0.3 --port 8123      (or FEDIFY_PEER_HOST / FEDIFY_PEER_PORT)
//
// Only 127.0.0.0/8 is allowed: the server refuses to bind elsewhere and its outbound fetch()
// refuses any URL whose host is not a 127.x.y.z literal (Fedify may try to load unknown JSON-LD
// @context URLs from the internet; that fails fast here instead).
//
// SIGNATURE VERIFICATION.  Fedify verifies every inbox POST before any inbox listener runs:
// see "Signature verification" in https://fedify.dev/manual/inbox ("activities whose
// signatures/proofs cannot be verified are rejected with 401 Unauthorized and are not passed to
// inbox listeners").  In 1.5.9 this is handleInboxInternal() in
// node_modules/@fedify/fedify/esm/federation/handler.js: it first tries a Linked Data Signature
// (`signature` in the body), then an Object Integrity Proof (`proof`, FEP-8b32), and otherwise
// requires a draft-cavage HTTP Signature (verifyRequest() in esm/sig/http.js, which needs
// `(request-target)` and `date` signed, plus `digest` when there is a body, a Date within 1 h,
// and a matching Digest); it then checks that the key's owner is the activity's `actor`
// (doesActorOwnKey) and answers 401 otherwise.  `skipSignatureVerification` is left false
// (set explicitly below).  NOTE: 1.5.9 does NOT understand RFC 9421 (`Signature-Input`); the
// docs page above describes newer releases (RFC 9421 arrived in Fedify 1.6).
// So every entry in /_control/received was verified; `verified_by` says how ("http-signature"
// when the body carried neither `signature` nor `proof`, which is what fedcop sends).  Rejected
// POSTs show up only in /_control/inbox_log (with their status) and /_control/logs.

import { createServer } from "node:http";
import { isIP } from "node:net";
import process from "node:process";
import { parseArgs } from "node:util";

import {
  Accept,
  Activity,
  Announce,
  Create,
  createFederation,
  Delete,
  Endpoints,
  Follow,
  generateCryptoKeyPair,
  isActor,
  Like,
  MemoryKvStore,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Reject,
  Undo,
  Update,
} from "@fedify/fedify";
import { Temporal } from "@js-temporal/polyfill";
import { configure, getConsoleSink, withFilter } from "@logtape/logtape";

// ---------------------------------------------------------------------------------------------
// Configuration

const { values: args } = parseArgs({
  options: {
    host: { type: "string" },
    port: { type: "string" },
  },
});
const HOST = args.host ?? process.env.FEDIFY_PEER_HOST ?? "127.0.0.3";
const PORT = Number(args.port ?? process.env.FEDIFY_PEER_PORT ?? "0");
const ACTOR = "probe";
// The process ends by itself after this long, so a test run that dies can't leave it behind.
const MAX_LIFETIME_SECONDS = Number(process.env.FEDIFY_PEER_MAX_SECONDS ?? "1800");
const CONSOLE_LOG_LEVEL = process.env.FEDIFY_PEER_LOG_LEVEL ?? "warning";

function isLoopbackIPv4(host) {
  return isIP(host) === 4 && host.split(".")[0] === "127";
}

if (!isLoopbackIPv4(HOST)) {
  console.error(`fedify-peer: refusing to bind to ${HOST}: only 127.0.0.0/8 addresses`);
  process.exit(2);
}
if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error(`fedify-peer: a port is required (--port or FEDIFY_PEER_PORT)`);
  process.exit(2);
}
const ORIGIN = `http://${HOST}:${PORT}`;

// ---------------------------------------------------------------------------------------------
// Recording

const MAX_LOG_RECORDS = 5000;
const received = []; // activities that reached an inbox listener (hence verified)
const inboxLog = []; // every POST to an inbox, with Fedify's answer (incl. 401s)
const outbound = []; // every HTTP request Fedify made (document fetches and deliveries)
const logs = []; // Fedify's own log records (debug and up)
const deliveryErrors = []; // failed tries of background deliveries (the automatic Accept)
const following = new Map(); // target actor id -> { follow, accepted, rejected }
const followers = new Map(); // follower actor id -> { follow, actor }
const notes = new Map(); // note id -> Note created through /_control/note

function pushCapped(list, item) {
  list.push(item);
  if (list.length > MAX_LOG_RECORDS) list.splice(0, list.length - MAX_LOG_RECORDS);
}

function memorySink(record) {
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    message += i % 2 === 0 ? part : safeString(part);
  }
  pushCapped(logs, {
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.join("."),
    message,
  });
}

function safeString(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text;
  } catch {
    return String(value);
  }
}

await configure({
  sinks: {
    console: withFilter(getConsoleSink(), CONSOLE_LOG_LEVEL),
    memory: memorySink,
  },
  loggers: [
    // Debug records go to memory only (GET /_control/logs): Fedify explains there why a
    // signature did not verify ("Failed to verify; ...", category fedify.sig.http).
    { category: ["fedify"], lowestLevel: "debug", sinks: ["memory", "console"] },
    { category: ["fedify-peer"], lowestLevel: "debug", sinks: ["memory", "console"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
  ],
});

// Every outbound request goes through here: record it, and never leave 127.0.0.0/8.
const realFetch = globalThis.fetch;
globalThis.fetch = async function loopbackOnlyFetch(input, init) {
  const request = new Request(input, init);
  const url = new URL(request.url);
  const entry = {
    time: new Date().toISOString(),
    method: request.method,
    url: request.url,
    headers: Object.fromEntries(request.headers.entries()),
    body: null,
    status: null,
    error: null,
  };
  pushCapped(outbound, entry);
  if (!isLoopbackIPv4(url.hostname)) {
    entry.error = "refused: not a 127.0.0.0/8 address";
    throw new TypeError(`fedify-peer: refused to fetch ${request.url} (loopback only)`);
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    entry.body = await request.clone().text();
  }
  try {
    const response = await realFetch(request, {
      redirect: init?.redirect ?? request.redirect,
      signal: AbortSignal.timeout(15_000),
    });
    entry.status = response.status;
    return response;
  } catch (error) {
    entry.error = String(error);
    throw error;
  }
};

// ---------------------------------------------------------------------------------------------
// Federation

// Fedify's defaults, as a real Fedify server has them: RSA-4096 (served as publicKey, id
// ACTOR#main-key, signs HTTP requests and LD signatures) and Ed25519 (ACTOR#key-2, only in
// assertionMethod; signs FEP-8b32 `proof`s on every outgoing activity).
const rsaKeyPair = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
const ed25519KeyPair = await generateCryptoKeyPair("Ed25519");

const federation = createFederation({
  kv: new MemoryKvStore(),
  // No message queue, on purpose: inbox listeners run before the sender gets its 202, and every
  // delivery is made at once, so a control call learns the recipient's answer (Fedify throws on
  // a non-2xx).  NB: in 1.5.9, `sendActivity(..., { immediate: true })` with an outbox queue
  // still enqueues (Context.sendActivityInternal drops `immediate` when it calls
  // Federation.sendActivity), so a queue would make control calls fire-and-forget.
  origin: ORIGIN,
  // Loopback testing: without this, Fedify's document loader and WebFinger client refuse
  // private addresses (validatePublicUrl in esm/runtime/url.js).  http: URLs need no option.
  allowPrivateAddress: true,
  skipSignatureVerification: false,
  userAgent: { software: "fedcop-fedify-peer/0" },
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== ACTOR) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify probe",
      summary: "A Fedify test peer for fedcop.",
      manuallyApprovesFollowers: false,
      inbox: ctx.getInboxUri(identifier),
      outbox: ctx.getOutboxUri(identifier),
      followers: ctx.getFollowersUri(identifier),
      following: ctx.getFollowingUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      url: ctx.getActorUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((key) => key.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) =>
    identifier === ACTOR ? [rsaKeyPair, ed25519KeyPair] : []
  );

federation.setOutboxDispatcher("/users/{identifier}/outbox", (_ctx, identifier) =>
  identifier === ACTOR ? { items: [] } : null
);
federation.setFollowersDispatcher("/users/{identifier}/followers", (_ctx, identifier) =>
  identifier === ACTOR ? { items: [...followers.values()].map((f) => f.actor) } : null
);
federation.setFollowingDispatcher("/users/{identifier}/following", (_ctx, identifier) =>
  identifier === ACTOR
    ? { items: [...following.entries()].filter(([, f]) => f.accepted).map(([id]) => new URL(id)) }
    : null
);
federation.setObjectDispatcher(Note, "/notes/{id}", (_ctx, values) =>
  notes.get(`${ORIGIN}/notes/${values.id}`) ?? null
);

async function record(ctx, activity) {
  const raw = ctx.activity ?? (await activity.toJsonLd());
  const object = typeof raw?.object === "object" && raw.object !== null ? raw.object : null;
  const entry = {
    seq: received.length + 1,
    time: new Date().toISOString(),
    type: activity.constructor.name, // Fedify's class (the JSON-LD type)
    raw_type: raw?.type ?? null,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    object_id: activity.objectId?.href ?? null,
    object_type: object?.type ?? null,
    object_embedded: object !== null,
    recipient: ctx.recipient, // "probe" for its personal inbox, null for the shared inbox
    inbox: ctx.recipient == null ? "shared" : "personal",
    verified: true,
    verified_by:
      raw?.proof != null
        ? "object-integrity-proof-or-http-signature"
        : raw?.signature != null
        ? "ld-signature-or-http-signature"
        : "http-signature",
    json: raw,
  };
  pushCapped(received, entry);
  return entry;
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  // Key fetches while verifying, and lookups in listeners, are signed GETs as probe on the
  // shared inbox too (personal inboxes already use the recipient's key).
  .setSharedKeyDispatcher((_ctx) => ({ identifier: ACTOR }))
  .on(Follow, async (ctx, follow) => {
    await record(ctx, follow);
    // Auto-accept follows of probe, so two peers can test each other.
    if (follow.objectId == null || follow.actorId == null) return;
    const parsed = ctx.parseUri(follow.objectId);
    if (parsed?.type !== "actor" || parsed.identifier !== ACTOR) return;
    const follower = await follow.getActor(ctx);
    if (!isActor(follower)) return;
    followers.set(follower.id.href, { follow, actor: follower.id });
    const accept = new Accept({
      id: new URL(`${ORIGIN}/accepts/${crypto.randomUUID()}`),
      actor: ctx.getActorUri(ACTOR),
      object: follow,
    });
    // Like a real server: answer 202 first, then deliver the Accept (a few tries).
    setTimeout(() => deliverWithRetries(ctx, follower, accept), 0);
  })
  .on(Accept, async (ctx, accept) => {
    const entry = await record(ctx, accept);
    const state = following.get(entry.actor);
    if (state != null && acceptsFollow(entry, state.follow)) state.accepted = true;
  })
  .on(Reject, async (ctx, reject) => {
    const entry = await record(ctx, reject);
    const state = following.get(entry.actor);
    if (state != null && acceptsFollow(entry, state.follow)) state.rejected = true;
  })
  .on(Undo, async (ctx, undo) => {
    const entry = await record(ctx, undo);
    if (entry.object_type === "Follow" || entry.json?.object?.type === "Follow") {
      followers.delete(entry.actor);
    }
  })
  .on(Create, record)
  .on(Announce, record)
  .on(Update, record)
  .on(Delete, record)
  .on(Like, record)
  // Anything else (Add, Remove, Block, Flag, Move, ...): Fedify ignores unregistered types.
  .on(Activity, record)
  .onError((_ctx, error) => {
    memorySink({
      timestamp: Date.now(),
      level: "error",
      category: ["fedify-peer", "inbox"],
      message: ["inbox listener failed: ", error],
    });
  });

async function deliverWithRetries(ctx, recipient, activity, attempts = 4) {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await ctx.sendActivity({ identifier: ACTOR }, recipient, activity);
      return;
    } catch (error) {
      pushCapped(deliveryErrors, {
        time: new Date().toISOString(),
        activity_id: activity.id?.href ?? null,
        activity_type: activity.constructor.name,
        attempt,
        error: String(error?.message ?? error),
      });
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

// An Accept/Reject answers our Follow when its object is the Follow's id, or an embedded Follow
// with that id.  (Objects without an id are matched by actor/object, as some servers send.)
function acceptsFollow(entry, follow) {
  if (entry.object_id != null && entry.object_id === follow.id?.href) return true;
  const object = entry.json?.object;
  return (
    typeof object === "object" &&
    object !== null &&
    object.id == null &&
    object.type === "Follow" &&
    idOf(object.object) === follow.objectId?.href
  );
}

function idOf(value) {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof value.id === "string") return value.id;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Control API (plain JSON)

function json(body, status = 200) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

// Resolve an actor URL, an acct: URI, or a handle (`@name@host:port`, `name@host:port`).
// Fedify's own WebFinger client always uses https: for acct: handles (lookupWebFingerInternal in
// esm/webfinger/lookup.js), so for handles we ask the host's WebFinger over http: here and then
// let Fedify fetch the `self` link it names.
async function resolveActor(ctx, target, documentLoader) {
  let url = target;
  const handle = /^(?:acct:|@)?([^@/:]+)@([^@/]+)$/.exec(target);
  if (handle != null) {
    const [, user, host] = handle;
    const resource = `acct:${user}@${host}`;
    const wf = new URL(`http://${host}/.well-known/webfinger`);
    wf.searchParams.set("resource", resource);
    const response = await fetch(wf, { headers: { Accept: "application/jrd+json" } });
    if (!response.ok) throw new Error(`WebFinger ${wf} answered ${response.status}`);
    const jrd = await response.json();
    const self = (jrd.links ?? []).find(
      (link) =>
        link.rel === "self" &&
        (link.type === "application/activity+json" ||
          /^application\/ld\+json;\s*profile="https:\/\/www\.w3\.org\/ns\/activitystreams"/.test(
            link.type ?? "",
          )),
    );
    if (self?.href == null) throw new Error(`WebFinger for ${resource} has no self link`);
    url = self.href;
  }
  const actor = await ctx.lookupObject(url, { documentLoader });
  if (!isActor(actor)) {
    throw new Error(`${url} did not resolve to an actor (got ${actor?.constructor?.name ?? null})`);
  }
  return actor;
}

async function readJson(request) {
  try {
    return await request.json();
  } catch {
    return {};
  }
}

function failure(error, status = 502) {
  return json({ ok: false, error: String(error?.message ?? error) }, status);
}

async function control(request, path) {
  const ctx = federation.createContext(new URL(ORIGIN), undefined);
  if (path === "/_control/health") {
    return json({ ok: true, origin: ORIGIN, actor: ctx.getActorUri(ACTOR).href });
  }
  if (request.method === "GET") {
    switch (path) {
      case "/_control/received":
        return json(received);
      case "/_control/inbox_log":
        return json(inboxLog);
      case "/_control/outbound":
        return json(outbound);
      case "/_control/logs":
        return json(logs);
      case "/_control/delivery_errors":
        return json(deliveryErrors);
      case "/_control/state":
        return json({
          following: Object.fromEntries(
            [...following.entries()].map(([id, s]) => [
              id,
              { follow_id: s.follow.id.href, accepted: s.accepted, rejected: s.rejected },
            ]),
          ),
          followers: [...followers.keys()],
        });
    }
    return json({ ok: false, error: "not found" }, 404);
  }
  if (request.method !== "POST") return json({ ok: false, error: "method not allowed" }, 405);
  const body = await readJson(request);
  if (path === "/_control/reset") {
    for (const list of [received, inboxLog, outbound, logs, deliveryErrors]) list.length = 0;
    return json({ ok: true });
  }
  if (typeof body.target !== "string" || body.target === "") {
    return json({ ok: false, error: "body needs a string `target`" }, 400);
  }
  // Lookups are signed GETs as probe (like Mastodon's); `"signed_fetch": false` for unsigned.
  const documentLoader = body.signed_fetch === false
    ? ctx.documentLoader
    : await ctx.getDocumentLoader({ identifier: ACTOR });
  let actor;
  try {
    actor = await resolveActor(ctx, body.target, documentLoader);
  } catch (error) {
    return failure(error);
  }
  // Without a queue, deliveries are made at once: the caller learns the recipient's answer
  // (Fedify throws on any non-2xx status).
  const send = async (activity) => {
    await ctx.sendActivity({ identifier: ACTOR }, actor, activity);
    return await activity.toJsonLd();
  };
  try {
    switch (path) {
      case "/_control/follow": {
        const follow = new Follow({
          id: new URL(`${ORIGIN}/follows/${crypto.randomUUID()}`),
          actor: ctx.getActorUri(ACTOR),
          object: actor.id,
        });
        following.set(actor.id.href, { follow, accepted: false, rejected: false });
        const sent = await send(follow);
        return json({ ok: true, actor: actor.id.href, inbox: actor.inboxId?.href, sent });
      }
      case "/_control/unfollow": {
        const state = following.get(actor.id.href);
        if (state == null) return json({ ok: false, error: "not following that actor" }, 409);
        const undo = new Undo({
          id: new URL(`${ORIGIN}/undos/${crypto.randomUUID()}`),
          actor: ctx.getActorUri(ACTOR),
          object: state.follow,
        });
        const sent = await send(undo);
        following.delete(actor.id.href);
        return json({ ok: true, actor: actor.id.href, inbox: actor.inboxId?.href, sent });
      }
      case "/_control/note": {
        // A public Note from probe, addressed to the target (e.g. a fedcop group), which is
        // mentioned; served at its id so it can be fetched back.
        const id = new URL(`${ORIGIN}/notes/${crypto.randomUUID()}`);
        const note = new Note({
          id,
          attribution: ctx.getActorUri(ACTOR),
          content: String(body.content ?? "Hello from the Fedify probe"),
          to: PUBLIC_COLLECTION,
          ccs: [actor.id, ctx.getFollowersUri(ACTOR)],
          published: Temporal.Now.instant(),
          replyTarget: typeof body.in_reply_to === "string" ? new URL(body.in_reply_to) : null,
        });
        notes.set(id.href, note);
        const sent = await send(
          new Create({
            id: new URL(`${id.href}/activity`),
            actor: ctx.getActorUri(ACTOR),
            object: note,
            to: PUBLIC_COLLECTION,
            ccs: [actor.id, ctx.getFollowersUri(ACTOR)],
          }),
        );
        return json({ ok: true, actor: actor.id.href, note: id.href, sent });
      }
      case "/_control/like": {
        if (typeof body.object !== "string") return json({ ok: false, error: "needs `object`" }, 400);
        const sent = await send(
          new Like({
            id: new URL(`${ORIGIN}/likes/${crypto.randomUUID()}`),
            actor: ctx.getActorUri(ACTOR),
            object: new URL(body.object),
          }),
        );
        return json({ ok: true, actor: actor.id.href, sent });
      }
    }
  } catch (error) {
    return failure(error);
  }
  return json({ ok: false, error: "not found" }, 404);
}

// ---------------------------------------------------------------------------------------------
// HTTP: Node's http server → Fetch API Request → federation.fetch / control API

function toRequest(req, body) {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const url = new URL(req.url ?? "/", ORIGIN);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(url, { method: req.method, headers, body: hasBody ? body : undefined });
}

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname.startsWith("/_control/")) return await control(request, url.pathname);
  const isInboxPost = request.method === "POST" &&
    (url.pathname === "/inbox" || /^\/users\/[^/]+\/inbox$/.test(url.pathname));
  let entry = null;
  if (isInboxPost) {
    const text = await request.clone().text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch { /* Fedify answers 400 */ }
    entry = {
      time: new Date().toISOString(),
      path: url.pathname,
      headers: Object.fromEntries(request.headers.entries()),
      activity_id: parsed?.id ?? null,
      activity_type: parsed?.type ?? null,
      body: parsed ?? text,
      status: null,
      response: null,
    };
    pushCapped(inboxLog, entry);
  }
  const response = await federation.fetch(request, {
    contextData: undefined,
    onNotFound: () => new Response("Not found", { status: 404 }),
    onNotAcceptable: () => new Response("Not acceptable", { status: 406 }),
  });
  if (entry != null) {
    entry.status = response.status;
    entry.response = await response.clone().text();
  }
  return response;
}

const server = createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const response = await handle(toRequest(req, Buffer.concat(chunks)));
    const headers = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const payload = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, headers);
    res.end(payload);
  } catch (error) {
    memorySink({
      timestamp: Date.now(),
      level: "error",
      category: ["fedify-peer", "http"],
      message: ["request failed: ", error],
    });
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(error));
  }
});
server.requestTimeout = 30_000;

function shutdown(code = 0) {
  server.close();
  // Open keep-alive sockets would hold the loop; we're done either way.
  setTimeout(() => process.exit(code), 200).unref();
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
// Ends with the parent: the Python harness holds our stdin open and closes it at exit.
if (process.env.FEDIFY_PEER_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", () => shutdown(0));
  process.stdin.on("error", () => shutdown(0));
  process.stdin.resume();
}
setTimeout(() => {
  console.error(`fedify-peer: lifetime of ${MAX_LIFETIME_SECONDS}s is over; exiting`);
  shutdown(3);
}, MAX_LIFETIME_SECONDS * 1000).unref();

server.on("error", (error) => {
  console.error(`fedify-peer: ${error}`);
  process.exit(1);
});
server.listen(PORT, HOST, () => {
  console.log(`fedify-peer listening on ${ORIGIN} as ${ORIGIN}/users/${ACTOR}`);
});
