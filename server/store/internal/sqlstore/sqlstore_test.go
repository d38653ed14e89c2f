package sqlstore

import (
	"strings"
	"testing"
)

func TestRewrite(t *testing.T) {
	pg := Dialect{Dollar: true, Tokens: map[string]string{"BLOB": "BYTEA", "FOR_UPDATE": "FOR UPDATE"}}
	lite := Dialect{Tokens: map[string]string{"BLOB": "BLOB"}}
	for _, c := range []struct {
		d        Dialect
		in, want string
	}{
		{pg, "SELECT a FROM t WHERE x = ? AND y = ? @FOR_UPDATE@", "SELECT a FROM t WHERE x = $1 AND y = $2 FOR UPDATE"},
		{lite, "SELECT a FROM t WHERE x = ? AND y = ? @FOR_UPDATE@", "SELECT a FROM t WHERE x = ? AND y = ? "},
		{pg, "CREATE TABLE t (b @BLOB@)", "CREATE TABLE t (b BYTEA)"},
		{lite, "CREATE TABLE t (b @BLOB@)", "CREATE TABLE t (b BLOB)"},
		{pg, "SELECT ?2, ?1, ?12", "SELECT $2, $1, $12"},
		{lite, "SELECT ?2, ?1", "SELECT ?2, ?1"},
		{pg, "a @ b", "a @ b"}, // an unterminated token is kept
	} {
		if got := c.d.Rewrite(c.in); got != c.want {
			t.Errorf("Rewrite(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestMigrationsParse checks that the embedded migrations are numbered,
// ordered and split into statements without leftover tokens.
func TestMigrationsParse(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %+v", ms)
	}
	pg := Dialect{Dollar: true, Tokens: map[string]string{"BLOB": "BYTEA", "SERIAL_PK": "BIGSERIAL PRIMARY KEY"}}
	for _, m := range ms {
		stmts := statements(pg.Rewrite(m.sql))
		if len(stmts) == 0 {
			t.Fatalf("%s: no statements", m.name)
		}
		for _, s := range stmts {
			if strings.Contains(s, "@") || strings.Contains(s, "--") {
				t.Fatalf("%s: statement not cleaned: %q", m.name, s)
			}
		}
	}
}
