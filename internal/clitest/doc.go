// Package clitest holds the end-to-end tests of the parley binary: TestMain
// builds the real binary once, each test starts a real server with it
// (`parley serve` on a free loopback port) and drives the client commands
// through separate --profile folders, reading their --json output the way a
// script would. It has no non-test code.
package clitest
