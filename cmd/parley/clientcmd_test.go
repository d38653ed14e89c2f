package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/wire"
)

func TestParseTimer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"off", 0, true}, {"0", 0, true}, {"30s", 30 * time.Second, true}, {"1h30m", 90 * time.Minute, true},
		{"7d", 7 * 24 * time.Hour, true}, {"365d", 365 * 24 * time.Hour, true},
		{"366d", 0, false}, {"0d", 0, false}, {"500ms", 0, false}, {"-1h", 0, false}, {"soon", 0, false},
		{"7dd", 0, false}, {"9000h", 0, false}, {"", 0, false},
	} {
		got, err := parseTimer(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseTimer(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		var ue usageError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("parseTimer(%q): %v is not a usage error", tc.in, err)
		}
	}
}

func TestGroupDigits(t *testing.T) {
	in := "00001 00002 00003 00004 00005 00006 00007 00008 00009 00010 00011 00012"
	want := "00001 00002 00003 00004\n00005 00006 00007 00008\n00009 00010 00011 00012"
	if got := groupDigits(in); got != want {
		t.Fatalf("groupDigits:\n%s\nwant\n%s", got, want)
	}
}

func TestParseMessageID(t *testing.T) {
	id, err := parseMessageID("00112233445566778899aabbccddeeff")
	if err != nil || id.String() != "00112233445566778899aabbccddeeff" {
		t.Fatalf("parseMessageID: %v %v", id, err)
	}
	for _, bad := range []string{"", "0011", "00112233445566778899aabbccddeefg", "00112233445566778899aabbccddeeff00"} {
		if _, err := parseMessageID(bad); err == nil {
			t.Errorf("parseMessageID(%q) accepted", bad)
		}
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.Join(errors.New("dial"), client.ErrOffline), "cannot reach the Parley server"},
		{client.ErrUnknownChat, "unknown chat"},
		{store.ErrNotFound, "unknown chat"},
		{&wire.Error{Code: wire.ErrorCode_DEVICE_REVOKED, Message: "x"}, "this device was revoked"},
		{&wire.Error{Code: wire.ErrorCode_USERNAME_TAKEN}, "username is taken"},
		{&wire.Error{Code: wire.ErrorCode_FORBIDDEN, Message: "not a member"}, "the server refused: not a member"},
		{client.ErrNotAdmin, "only a group admin may do this"},
	} {
		got := explain(tc.err, nil)
		if !strings.Contains(got.Error(), tc.want) || strings.Contains(got.Error(), "client: ") || !errors.Is(got, tc.err) {
			t.Errorf("explain(%v) = %q, want it to say %q and wrap the cause", tc.err, got, tc.want)
		}
	}
}

// TestClientCommandsRegistered checks that every client command is on the
// root command, with --profile, and --json on every one but chat (those
// without a result accept it and print nothing).
func TestClientCommandsRegistered(t *testing.T) {
	var out, errOut bytes.Buffer
	root := newRootCmd(&env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }})
	for _, tc := range []struct {
		path string
		json bool
	}{
		{"init", true}, {"whoami", true}, {"send", true}, {"recv", true}, {"chats", true}, {"history", true},
		{"group create", true}, {"group add", true}, {"group remove", true}, {"group leave", true},
		{"group rename", true}, {"group admins", true}, {"link new", true}, {"link approve", true},
		{"devices", true}, {"devices revoke", true}, {"verify", true}, {"settings get", true}, {"settings set", true},
		{"message edit", true}, {"message delete", true}, {"message react", true},
		{"recovery show", true}, {"recovery rotate", true}, {"recovery sync", true}, {"recovery restore", true},
		{"file send", true}, {"file get", true}, {"chat", false},
	} {
		cmd, rest, err := root.Find(strings.Fields(tc.path))
		if err != nil || len(rest) != 0 || cmd.CommandPath() != "parley "+tc.path {
			t.Errorf("%s: not registered (%v)", tc.path, err)
			continue
		}
		if cmd.Flags().Lookup("profile") == nil || cmd.Flags().Lookup("passphrase-file") == nil {
			t.Errorf("%s: no --profile or --passphrase-file", tc.path)
		}
		if (cmd.Flags().Lookup("json") != nil) != tc.json {
			t.Errorf("%s: --json present is %v, want %v", tc.path, !tc.json, tc.json)
		}
	}
}

func TestTimeText(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Time{}, ""},
		{time.Date(2026, 11, 25, 21, 55, 45, 0, cet), "2026-11-25T20:55:45.000Z"},
		{time.Date(2026, 11, 25, 20, 55, 45, 400_000_000, time.UTC), "2026-11-25T20:55:45.400Z"},
		{time.Date(2026, 11, 25, 20, 55, 45, 617_999_999, time.UTC), "2026-11-25T20:55:45.617Z"},
	} {
		if got := timeText(c.in); got != c.want {
			t.Errorf("timeText(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
