// Package security is Parley's security regression suite: one test per
// attack, each named after the attack, each asserting the specific refusal
// and that the refusal changed no state (MLS group state byte for byte,
// server log positions and mailbox contents, client histories).
//
// The tests run against the real components: the mls and identity
// libraries, filecrypt, a real server on 127.0.0.1:0 (internal/testserver)
// and real SDK clients. docs/threat-model.md names, for each adversary,
// the tests here that show what it cannot do.
package security
