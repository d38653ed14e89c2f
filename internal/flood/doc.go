// Package flood holds the flood fairness test: one abusive account floods
// registrations, connections and sends from its own address while
// well-behaved devices chat; the abuser must hit the server's limits with
// clear error codes, and the others' delivery latency must stay within 2×
// of the quiet baseline measured in the same test.
package flood
