// Package filetest tests encrypted file transfer end to end through the real
// parley binary: `parley serve` with its blob service, `parley file send`,
// `parley recv --json` and `parley file get`, including killed transfers that
// resume, tampering on the server's disk, the size limit and a plaintext
// canary over the server's data folder.
package filetest
