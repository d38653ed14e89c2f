// Package flood holds the flood fairness test: one abusive account floods
// registrations, connections and sends from its own address while
// well-behaved devices chat; the abuser must hit the server's limits with
// clear error codes, and the others' p99 delivery latency must stay within
// 2× of the quiet baseline measured in the same test (interleaved rounds;
// by default with a margin for the abuser's own CPU on the test machine,
// see TestFloodFairness).
package flood
