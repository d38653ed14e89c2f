// Package crashtest holds the crash test of `parley serve`: the real binary
// is killed with SIGKILL at random moments while clients send, restarted on
// the same data directory, and every message the server acknowledged must
// reach its recipients, with redeliveries recognisable by message id.
//
// The test builds ./cmd/parley. It runs PARLEY_CRASH_CYCLES kill/restart
// cycles if that is set, otherwise 20 under CI=true, 1 with -short and 3 in
// a plain `go test`. PARLEY_CRASH_SEED fixes the random kill moments.
package crashtest
