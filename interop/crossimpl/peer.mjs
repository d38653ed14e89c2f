// A ts-mls group member driven by crossimpl_test.go: one JSON request per
// line on stdin, one JSON reply per line on stdout. Bytes travel as hex.
//
//   {"op":"create","suite":1,"groupId":hex,"keyPackage":hex}  -> {"welcome","epochAuthenticator"}
//   {"op":"keyPackage","suite":1}                            -> {"keyPackage"}
//   {"op":"join","welcome":hex}                                -> {"epochAuthenticator"}
//   {"op":"protect","plaintext":hex,"aad":hex}                 -> {"message"}
//   {"op":"process","message":hex}                             -> {"kind","plaintext"?,"aad"?,"epochAuthenticator"}
//   {"op":"commit","public":bool}                              -> {"commit","epochAuthenticator"}
//   {"op":"export","label":str,"context":hex,"length":n}       -> {"secret"}
// Errors are replied as {"error": message}.
import readline from "node:readline"
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  mlsExporter,
  processMessage,
} from "ts-mls"

// The suites Parley supports, by id.
const suiteNames = {
  1: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
  2: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
  3: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
}

const hex = (b) => Buffer.from(b).toString("hex")
const bytes = (h) => new Uint8Array(Buffer.from(h ?? "", "hex"))

let impl
let state
let ownKeyPackage

function decode(h, want) {
  const decoded = decodeMlsMessage(bytes(h), 0)
  if (!decoded) throw new Error("undecodable MLS message")
  const m = decoded[0]
  if (want && m.wireformat !== want) throw new Error(`expected ${want}, got ${m.wireformat}`)
  return m
}

async function setSuite(id) {
  if (!suiteNames[id]) throw new Error(`suite ${id} not handled`)
  impl = await getCiphersuiteImpl(getCiphersuiteFromName(suiteNames[id]))
}

const ops = {
  async keyPackage(req) {
    await setSuite(req.suite)
    const cred = { credentialType: "basic", identity: new TextEncoder().encode("ts-mls") }
    ownKeyPackage = await generateKeyPackage(cred, defaultCapabilities(), defaultLifetime, [], impl)
    const kp = encodeMlsMessage({ keyPackage: ownKeyPackage.publicPackage, wireformat: "mls_key_package", version: "mls10" })
    return { keyPackage: hex(kp) }
  },

  async join(req) {
    const w = decode(req.welcome, "mls_welcome")
    state = await joinGroup(w.welcome, ownKeyPackage.publicPackage, ownKeyPackage.privatePackage, emptyPskIndex, impl)
    return { epochAuthenticator: hex(state.keySchedule.epochAuthenticator) }
  },

  async create(req) {
    await setSuite(req.suite)
    const cred = { credentialType: "basic", identity: new TextEncoder().encode("ts-mls") }
    const own = await generateKeyPackage(cred, defaultCapabilities(), defaultLifetime, [], impl)
    state = await createGroup(bytes(req.groupId), own.publicPackage, own.privatePackage, [], impl)
    const kp = decode(req.keyPackage, "mls_key_package")
    const res = await createCommit(
      { state, cipherSuite: impl },
      { extraProposals: [{ proposalType: "add", add: { keyPackage: kp.keyPackage } }], ratchetTreeExtension: true },
    )
    state = res.newState
    const welcome = encodeMlsMessage({ welcome: res.welcome, wireformat: "mls_welcome", version: "mls10" })
    return { welcome: hex(welcome), epochAuthenticator: hex(state.keySchedule.epochAuthenticator) }
  },

  async protect(req) {
    const res = await createApplicationMessage(state, bytes(req.plaintext), impl, bytes(req.aad))
    state = res.newState
    const msg = encodeMlsMessage({ privateMessage: res.privateMessage, wireformat: "mls_private_message", version: "mls10" })
    return { message: hex(msg) }
  },

  async process(req) {
    const m = decode(req.message)
    const res = await processMessage(m, state, emptyPskIndex, acceptAll, impl)
    state = res.newState
    const out = { kind: res.kind, epochAuthenticator: hex(state.keySchedule.epochAuthenticator) }
    if (res.kind === "applicationMessage") out.plaintext = hex(res.message)
    return out
  },

  async commit(req) {
    const res = await createCommit({ state, cipherSuite: impl }, { wireAsPublicMessage: !!req.public })
    state = res.newState
    return { commit: hex(encodeMlsMessage(res.commit)), epochAuthenticator: hex(state.keySchedule.epochAuthenticator) }
  },

  async export(req) {
    const secret = await mlsExporter(state.keySchedule.exporterSecret, req.label, bytes(req.context), req.length, impl)
    return { secret: hex(secret) }
  },
}

const rl = readline.createInterface({ input: process.stdin })
for await (const line of rl) {
  let reply
  try {
    const req = JSON.parse(line)
    const op = ops[req.op]
    if (!op) throw new Error(`unknown op ${req.op}`)
    reply = await op(req)
  } catch (e) {
    reply = { error: String(e && e.stack ? e.stack : e) }
  }
  process.stdout.write(JSON.stringify(reply) + "\n")
}
