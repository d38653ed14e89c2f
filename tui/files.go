package tui

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

// transferState is a file upload or download in progress; one at a time.
type transferState struct {
	verb        string // "sending" or "saving"
	name        string
	done, total int64
	bar         progress.Model
	wait        tea.Cmd
}

// progressMsg reports bytes done of a transfer.
type progressMsg struct{ done, total int64 }

// transferDoneMsg ends a transfer.
type transferDoneMsg struct {
	err  error
	info string
}

// startTransfer runs fn (an upload or download) off the UI goroutine and
// reports its progress; only the latest progress waits, so a fast transfer
// never blocks on a slow screen.
func (m *Model) startTransfer(verb, name string, fn func(ctx context.Context, p client.FileProgress) (string, error)) tea.Cmd {
	if m.transfer != nil {
		m.setError(fmt.Errorf("a file is already %s: wait for it to finish", m.transfer.verb))
		return nil
	}
	prog := make(chan tea.Msg, 1)
	done := make(chan tea.Msg, 1)
	report := func(d, t int64) {
		for {
			select {
			case prog <- progressMsg{d, t}:
				return
			default:
			}
			select {
			case <-prog: // drop the older report
			default:
			}
		}
	}
	ctx := m.ctx
	go func() {
		info, err := fn(ctx, report)
		done <- transferDoneMsg{err: err, info: info}
	}()
	bar := progress.New(progress.WithWidth(20), progress.WithoutPercentage(), progress.WithFillCharacters('█', '░'))
	wait := func() tea.Msg {
		select {
		case p := <-prog:
			return p
		case d := <-done:
			return d
		}
	}
	m.transfer = &transferState{verb: verb, name: name, bar: bar, wait: wait}
	m.status = ""
	return wait
}

// updateTransfer handles a transfer's progress and end.
func (m *Model) updateTransfer(msg tea.Msg) tea.Cmd {
	tr := m.transfer
	if tr == nil {
		return nil
	}
	switch msg := msg.(type) {
	case progressMsg:
		tr.done, tr.total = msg.done, msg.total
		return tr.wait
	case transferDoneMsg:
		m.transfer = nil
		if msg.err != nil {
			m.setError(fmt.Errorf("%s %s failed: %s", tr.verb, tr.name, errorText(msg.err)))
		} else {
			tr.done = tr.total
			m.setInfo(msg.info)
			m.status += " " + m.barText(tr) // styled: added after cleaning
		}
		if m.conv != nil {
			return tea.Batch(m.reloadConv(), m.loadChats())
		}
	}
	return nil
}

// transferLine is the progress bar line above the composer.
func (m *Model) transferLine() string {
	return truncate(m.transfer.verb+" "+m.transfer.name+" "+m.barText(m.transfer), m.width)
}

// barText is a transfer's progress bar, percentage and sizes.
func (m *Model) barText(tr *transferState) string {
	pct := 0.0
	if tr.total > 0 {
		pct = float64(tr.done) / float64(tr.total)
	}
	bar := tr.bar.ViewAs(pct)
	if !m.st.color {
		full := int(pct * 20)
		bar = strings.Repeat("#", full) + strings.Repeat(".", 20-full)
	}
	return fmt.Sprintf("%s %3.0f%% (%s of %s)", bar, pct*100, sizeText(tr.done), sizeText(tr.total))
}

// sendFile uploads the file at path to the open chat (/file PATH).
func (m *Model) sendFile(path string) tea.Cmd {
	chat := m.conv.id
	name := filepath.Base(path)
	return m.startTransfer("sending", name, func(ctx context.Context, p client.FileProgress) (string, error) {
		if _, err := m.c.SendFilePath(ctx, chat, path, p); err != nil {
			return "", err
		}
		return "sent " + name, nil
	})
}

// saveFile downloads the selected file message into the current folder.
func (m *Model) saveFile(msg *store.Message) tea.Cmd {
	f, err := client.FileOf(msg)
	if err != nil {
		m.setError(err)
		return nil
	}
	id := msg.ID
	name := saveName(f.Name)
	return m.startTransfer("saving", name, func(ctx context.Context, p client.FileProgress) (string, error) {
		path, err := m.c.GetFile(ctx, id, filepath.Join(m.opts.DownloadDir, name), p)
		if err != nil {
			return "", err
		}
		return "saved " + name + " to " + path, nil
	})
}

// fileText describes a file message in the conversation.
func fileText(msg *store.Message) string {
	f, err := client.FileOf(msg)
	if err != nil {
		return "[a file this version cannot read]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "📎 %s (%s", cleanLine(f.Name), sizeText(f.Size))
	if f.MediaType != "" {
		b.WriteString(", " + cleanLine(f.MediaType))
	}
	b.WriteString(")")
	return b.String()
}

// sizeText is a byte count for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// saveName is the local name for a received file: the sender's base name,
// cleaned, never a path out of the download folder.
func saveName(name string) string {
	name = filepath.Base(strings.ReplaceAll(cleanLine(name), "\\", "/"))
	if name == "." || name == ".." || name == "/" || strings.TrimSpace(name) == "" {
		return "file"
	}
	return name
}
