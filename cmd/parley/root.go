package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// env is what commands need from the process: output streams and the
// environment. Tests pass their own.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// commandConstructors builds the top-level commands; each command group's
// file adds its constructor in init. It holds functions, not flag values.
var commandConstructors []func(*env) *cobra.Command

// addCommand registers a top-level command constructor.
func addCommand(f func(*env) *cobra.Command) { commandConstructors = append(commandConstructors, f) }

// usageError marks errors caused by bad command-line use (exit status 2).
type usageError struct{ error }

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "parley",
		Short:         "Parley: end-to-end encrypted messaging, server and clients in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd, e.getenv)
		},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{errors.New(flagErrorText(err))} })
	for _, f := range commandConstructors {
		root.AddCommand(f(e))
	}
	rejectUnknownSubcommands(root)
	// A command that only groups others shows only "CMD [command]" in its
	// usage, as cobra does for a command without Run.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}",
		`{{if and .Runnable (not (index .Annotations "`+groupOnly+`"))}}`, 1))
	return root
}

// groupOnly is the annotation rejectUnknownSubcommands puts on the commands
// it makes runnable only to reject unknown subcommands.
const groupOnly = "parley-group-only"

// rejectUnknownSubcommands makes every command that only groups others
// (parley, parley group, parley message, ...) fail with a usage error
// (exit status 2) on an unknown subcommand, where cobra would print the help
// and exit 0 (or, for the root, fail with status 1). Without arguments they
// still print their help.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[groupOnly] = "true"
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return usageError{fmt.Errorf("unknown command %q for %q (see `%s --help`)", args[0], cmd.CommandPath(), cmd.CommandPath())}
	}
}

// envName is the environment variable that backs a flag.
func envName(flag string) string {
	return "PARLEY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag the command line did not set from its PARLEY_*
// environment variable, if that is set.
func applyEnv(cmd *cobra.Command, getenv func(string) string) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if serr := cmd.Flags().Set(f.Name, v); serr != nil {
				err = usageError{fmt.Errorf("invalid %s=%q: %s", envName(f.Name), v, flagErrorText(serr))}
			}
		}
	})
	return err
}

// flagErrorText is a flag parsing error with the Go parser's wording
// (`strconv.ParseInt: parsing "x": invalid syntax`) replaced by what the
// flag wants.
func flagErrorText(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown shorthand flag:") {
		// Most often a message text such as "-1, not me".
		return msg + " (an argument that starts with - goes after --, as in parley send TO -- TEXT)"
	}
	for _, w := range []struct{ cut, want string }{
		{": strconv.ParseBool:", "true or false"},
		{": strconv.ParseInt:", "a whole number"},
		{": strconv.ParseUint:", "a whole number, 0 or more"},
		{": strconv.ParseFloat:", "a number"},
		{": time: ", "a duration such as 30s, 5m or 1h"},
	} {
		if before, _, ok := strings.Cut(msg, w.cut); ok {
			return before + ": want " + w.want
		}
	}
	return msg
}
