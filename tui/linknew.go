package tui

import (
	"context"
	"errors"
	"io"
	"strings"

	tea "charm.land/bubbletea/v2"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/parley-im/parley/client"
)

// ErrLinkCancelled means the user left the link screen before a device
// approved it.
var ErrLinkCancelled = errors.New("linking cancelled: this device was not linked")

// linkNewModel is the screen of a new device waiting to be linked: its link
// code, the code as a QR code, and the comparison code.
type linkNewModel struct {
	ctx           context.Context
	pl            *client.PendingLink
	st            styles
	qr            string
	width, height int
	c             *client.Client
	err           error
}

type linkedMsg struct {
	c   *client.Client
	err error
}

// RunLink links a new device: it prepares the profile folder dir, shows the
// link code, its QR code and the comparison code on the terminal, and waits
// until a device of the account approves (in `parley chat`, key l, or with
// `parley link approve`). It returns the new device's client, which the
// caller passes to [Run].
func RunLink(ctx context.Context, dir, serverURL string, copts client.Options, in io.Reader, out io.Writer, opts Options) (*client.Client, error) {
	pl, err := client.NewLink(ctx, dir, serverURL, copts)
	if err != nil {
		return nil, err
	}
	q, err := qrcode.New(strings.ToUpper(pl.Request().Code()), qrcode.Low)
	if err != nil {
		pl.Close()
		return nil, err
	}
	q.DisableBorder = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &linkNewModel{ctx: ctx, pl: pl, st: newStyles(!opts.NoColor), qr: quietZone(q.ToSmallString(false)), width: 80, height: 24}
	final, err := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out)).Run()
	if fm, ok := final.(*linkNewModel); ok && fm.c != nil {
		return fm.c, nil
	}
	pl.Close()
	if fm, ok := final.(*linkNewModel); ok && fm.err != nil {
		return nil, fm.err
	}
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return nil, err
	}
	return nil, ErrLinkCancelled
}

func (m *linkNewModel) Init() tea.Cmd {
	pl, ctx := m.pl, m.ctx
	return func() tea.Msg {
		c, err := pl.Wait(ctx)
		return linkedMsg{c: c, err: err}
	}
}

func (m *linkNewModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case linkedMsg:
		m.c, m.err = msg.c, msg.err
		return m, tea.Quit
	case tea.KeyPressMsg:
		if s := msg.String(); s == "ctrl+c" || s == "esc" || s == "q" {
			return m, tea.Quit
		}
	}
	return m, nil
}

// linkCodeMarker precedes the link code on the screen.
const linkCodeMarker = "Link code:"

func (m *linkNewModel) View() tea.View {
	req := m.pl.Request()
	var b strings.Builder
	b.WriteString(m.st.title.Render("Link this device to your Parley account") + "\n\n")
	b.WriteString(wrapText("On a device of your account open `parley chat`, press l and paste the link code (or run `parley link approve CODE`). Check that it shows the same comparison code.", m.width) + "\n\n")
	b.WriteString("Comparison code: " + m.st.bold.Render(req.Comparison()) + "\n\n")
	b.WriteString(linkCodeMarker + "\n")
	code := req.Code()
	for w := max(10, m.width); len(code) > 0; {
		n := min(w, len(code))
		b.WriteString(code[:n] + "\n")
		code = code[n:]
	}
	b.WriteString("\n")
	if lines := strings.Count(m.qr, "\n") + 1; lines+strings.Count(b.String(), "\n")+2 <= m.height {
		b.WriteString(m.qr + "\n")
	} else {
		b.WriteString(m.st.faint.Render("(make the window taller to see the QR code)") + "\n")
	}
	b.WriteString(m.st.faint.Render("Waiting for approval… (esc cancels)"))
	v := tea.NewView(fitHeight(b.String(), m.height))
	v.AltScreen = true
	v.WindowTitle = "Parley — link this device"
	return v
}
