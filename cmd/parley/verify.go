package main

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/identity"
)

func init() { addCommand(newVerifyCmd) }

func newVerifyCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "verify ADDRESS",
		Short: "Show the safety number to compare with another account",
		Long: `Show the safety number of this account and the one at ADDRESS, as digits
and as a QR code. Compare it with the other person, in person or over a
channel you trust: if both show the same number, nobody is in between. The
number is per account, so it stays the same when either of you adds devices.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				acct, err := c.Resolve(ctx, args[0])
				if err != nil {
					return err
				}
				if acct.ID == c.Me().AccountID {
					return cliErr(nil, "%s is this account's own address: verify the safety number with someone else's address", args[0])
				}
				id, err := c.Store().Identity(ctx)
				if err != nil {
					return err
				}
				mine, theirs := id.AccountKey.Public(), ed25519.PublicKey(acct.Key)
				number := identity.SafetyNumber(mine, theirs)
				if f.json {
					return (&printer{w: e.stdout, json: true}).emit(struct {
						Address      string `json:"address"`
						AccountID    string `json:"account_id"`
						SafetyNumber string `json:"safety_number"`
					}{args[0], string(acct.ID), number})
				}
				qr, err := qrText(identity.SafetyQRPayload(mine, theirs))
				if err != nil {
					return fmt.Errorf("failed to draw the QR code: %w", err)
				}
				_, err = fmt.Fprintf(e.stdout, "Safety number with %s (%s):\n\n%s\n\n%s", args[0], acct.ID, groupDigits(number), qr)
				return err
			})
		},
	}
	addClientFlags(cmd, &f, true)
	return cmd
}

// groupDigits lays a safety number out as rows of four groups of five.
func groupDigits(n string) string {
	var digits []byte
	for i := 0; i < len(n); i++ {
		if n[i] >= '0' && n[i] <= '9' {
			digits = append(digits, n[i])
		}
	}
	var out []byte
	for i := 0; i < len(digits); i += 5 {
		end := min(i+5, len(digits))
		if i > 0 {
			if i%20 == 0 {
				out = append(out, '\n')
			} else {
				out = append(out, ' ')
			}
		}
		out = append(out, digits[i:end]...)
	}
	return string(out)
}
