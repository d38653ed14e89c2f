package binharness

import (
	"encoding/json"
	"strings"
	"testing"
)

// OK fails the test unless r exited 0, and returns its stdout.
func OK(t testing.TB, r Result) string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("parley %s: exit %d\nstderr: %s", strings.Join(r.Args, " "), r.Code, r.Stderr)
	}
	return r.Stdout
}

// Fails expects r to have exited non-zero with one line on stderr containing
// want, and returns that line; otherwise it fails the test.
func Fails(t testing.TB, r Result, want string) string {
	t.Helper()
	args := strings.Join(r.Args, " ")
	if r.Code == 0 {
		t.Fatalf("parley %s: exit 0, want an error\nstdout: %s", args, r.Stdout)
	}
	msg := strings.TrimSpace(r.Stderr)
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("parley %s: stderr is not one line: %q", args, msg)
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("parley %s: stderr %q does not say %q", args, msg, want)
	}
	return msg
}

// Decode parses one JSON object per line of out into values of type T,
// rejecting unknown fields so the documented schema is what is printed.
func Decode[T any](t testing.TB, out string) []T {
	t.Helper()
	var vs []T
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// One decodes exactly one JSON object as Decode does.
func One[T any](t testing.TB, out string) T {
	t.Helper()
	vs := Decode[T](t, out)
	if len(vs) != 1 {
		t.Fatalf("want one JSON line, got %d: %q", len(vs), out)
	}
	return vs[0]
}
