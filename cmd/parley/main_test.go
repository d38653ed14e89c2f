package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// run executes the root command in-process.
func run(t *testing.T, environ map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmd(&env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestVersionJSON(t *testing.T) {
	out, _, err := run(t, nil, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version  string
		Protocol int
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Protocol != wire.Version || v.Version == "" {
		t.Fatalf("version output %q: %v", out, err)
	}
}

// TestFlagErrorsSayWhatIsWanted checks that a bad flag or environment value
// names what the flag wants, not the Go parser that refused it, and that
// flags that do not go together say so.
func TestFlagErrorsSayWhatIsWanted(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"recv", "--json=maybe"}, `invalid argument "maybe" for "--json" flag: want true or false`},
		{nil, []string{"history", "x", "--limit", "abc"}, `invalid argument "abc" for "--limit" flag: want a whole number`},
		{nil, []string{"serve", "--addr-rate", "x"}, `invalid argument "x" for "--addr-rate" flag: want a number`},
		{nil, []string{"serve", "--epoch-grace", "-1"}, `invalid argument "-1" for "--epoch-grace" flag: want a whole number, 0 or more`},
		{nil, []string{"recv", "--timeout", "5"}, `invalid argument "5" for "--timeout" flag: want a duration such as 30s, 5m or 1h`},
		{nil, []string{"send", "bob@127.0.0.1", "-1 for that"}, `unknown shorthand flag: '1' in -1 for that (an argument that starts with - goes after --`},
		{nil, []string{"init", "--recover", "--server", "http://127.0.0.1:1", "--username", "bob"}, `--username goes with a new account`},
		{map[string]string{"PARLEY_TIMEOUT": "zz"}, []string{"recv"}, `invalid PARLEY_TIMEOUT="zz": invalid argument "zz" for "--timeout" flag: want a duration`},
	} {
		_, _, err := run(t, c.env, c.args...)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "strconv") {
			t.Errorf("parley %q (env %v): %v, want a usage error saying %q", c.args, c.env, err, c.want)
		}
	}
}

func TestEnvFallbackAndUsageErrors(t *testing.T) {
	_, _, err := run(t, map[string]string{"PARLEY_POW_BITS": "many"}, "serve")
	if _, ok := err.(usageError); !ok {
		t.Fatalf("bad env value: got %v, want usage error", err)
	}
	_, _, err = run(t, nil, "serve", "--no-such-flag")
	if _, ok := err.(usageError); !ok {
		t.Fatalf("unknown flag: got %v, want usage error", err)
	}
	_, _, err = run(t, nil, "serve", "--db", "mysql://x")
	if _, ok := err.(usageError); !ok {
		t.Fatalf("bad --db: got %v", err)
	}
	_, _, err = run(t, nil, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--tls-cert", "x")
	if _, ok := err.(usageError); !ok {
		t.Fatalf("cert without key: got %v", err)
	}
}

// TestBinaryServeAndInvite builds the real binary, creates an invite, runs
// an invite-only server configured partly through PARLEY_* variables,
// registers with the invite over the real protocol and stops the server
// with SIGTERM.
func TestBinaryServeAndInvite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "parley")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(bin, "admin", "invite", "--data", data).Output()
	if err != nil {
		t.Fatalf("admin invite: %v", err)
	}
	token := strings.TrimSpace(string(out))
	if len(token) != 32 {
		t.Fatalf("token %q", token)
	}

	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--invite-only")
	srv.Env = append(os.Environ(), "PARLEY_DATA="+data, "PARLEY_POW_BITS=4", "PARLEY_LOG_FORMAT=json")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	lines := bufio.NewScanner(stderr)
	urlRe := regexp.MustCompile(`"url":"http://([^"]+)"`)
	var addr string
	for addr == "" && lines.Scan() {
		if m := urlRe.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("server did not log its address")
	}
	go func() {
		for lines.Scan() {
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := wireclient.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	a := ts.NewIdentity(t)
	_, err = c.Register(ctx, a.Key.Public(), a.Devices[0].Cert, "")
	ts.WantCode(t, err, wire.ErrorCode_INVITE_REQUIRED)
	if _, err := c.Register(ctx, a.Key.Public(), a.Devices[0].Cert, token); err != nil {
		t.Fatalf("register with invite: %v", err)
	}
	if err := c.Authenticate(ctx, a.ID, a.Devices[0].ID, a.Devices[0].Key); err != nil {
		t.Fatal(err)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	<-c.Done()
}

// TestCommandLineUsageErrors checks that wrong command lines fail with a
// usage error (exit status 2) before touching any profile or server.
func TestCommandLineUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "parley"`},
		{[]string{"group", "frobnicate"}, `unknown command "frobnicate" for "parley group"`},
		{[]string{"message", "frob", "x"}, `unknown command "frob" for "parley message"`},
		{[]string{"send", "bob@127.0.0.1", " \t"}, "the message text is empty"},
		{[]string{"send", "bob@127.0.0.1", ""}, "the message text is empty"},
		{[]string{"message", "edit", "c", "00000000000000000000000000000000", " "}, "the new text is empty"},
		{[]string{"group", "create", "  ", "bob@127.0.0.1"}, "the group name is empty"},
		{[]string{"group", "rename", "c", ""}, "the group name is empty"},
		{[]string{"init", "--server", "http://127.0.0.1:1", "--username", "al"}, `"al" is not a valid username: must be 3 to 32 characters`},
		{[]string{"init", "--server", "127.0.0.1:8080"}, `--server "127.0.0.1:8080" is not a server URL`},
		{[]string{"init", "--recover", "--server", "ftp://127.0.0.1"}, `--server "ftp://127.0.0.1" is not a server URL`},
		{[]string{"link", "new", "--server", "http://"}, `--server "http://" is not a server URL`},
		{[]string{"chat", "--link-server", "example.org"}, `--link-server "example.org" is not a server URL`},
	} {
		_, _, err := run(t, map[string]string{"PARLEY_PROFILE": filepath.Join(t.TempDir(), "none")}, c.args...)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parley %q: got %v, want usage error %q", c.args, err, c.want)
		}
	}
	// parley chat without a terminal says so (not a Bubble Tea error).
	if _, _, err := run(t, nil, "chat", "--profile", t.TempDir()); err == nil || !strings.Contains(err.Error(), "needs a terminal") {
		t.Errorf("parley chat without a terminal: %v", err)
	}
	// A command that only groups others still prints its help without
	// arguments, and its usage line does not offer flags alone.
	out, _, err := run(t, nil, "group")
	if err != nil || !strings.Contains(out, "parley group [command]") || strings.Contains(out, "parley group [flags]") {
		t.Fatalf("parley group: %v\n%s", err, out)
	}
	out, _, err = run(t, nil, "group", "add", "--help")
	if err != nil || !strings.Contains(out, "parley group add CHAT MEMBER... [flags]") {
		t.Fatalf("parley group add --help: %v\n%s", err, out)
	}
}
