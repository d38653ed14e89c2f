package tui

import (
	"context"
	"errors"
	"fmt"
	"io"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
)

// eventBuffer is how many client events may wait for the UI.
const eventBuffer = 256

// Run shows the UI for c on the terminal (in and out) until the user quits
// or ctx ends. It keeps c online meanwhile (client.Run, which reconnects on
// its own); network errors never end it.
func Run(ctx context.Context, c *client.Client, in io.Reader, out io.Writer, opts Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, unsubscribe := c.Subscribe(eventBuffer)
	defer unsubscribe()
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()

	p := tea.NewProgram(New(ctx, c, events, opts), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	_, err := p.Run()
	cancel()
	if rerr := <-runDone; rerr != nil && !errors.Is(rerr, context.Canceled) && !errors.Is(rerr, client.ErrClosed) && err == nil {
		err = fmt.Errorf("failed to keep the client online: %w", rerr)
	}
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
