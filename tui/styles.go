package tui

import (
	"hash/fnv"

	"charm.land/lipgloss/v2"

	"github.com/parley-im/parley/identity"
)

// styles are the looks of the UI. With colour off (NO_COLOR) every style is
// plain or uses only bold, faint and reverse, and the UI stays readable
// because every state is also written as text.
type styles struct {
	color     bool
	title     lipgloss.Style
	faint     lipgloss.Style
	bold      lipgloss.Style
	selected  lipgloss.Style
	errText   lipgloss.Style
	infoText  lipgloss.Style
	online    lipgloss.Style
	offline   lipgloss.Style
	unread    lipgloss.Style
	separator lipgloss.Style
	deleted   lipgloss.Style
	senders   []lipgloss.Style
	me        lipgloss.Style
}

// senderPalette are the colours senders are drawn in.
var senderPalette = []string{"#5fafff", "#ff8787", "#87d787", "#d7af5f", "#af87ff", "#5fd7d7", "#ff87d7", "#d7d75f"}

func newStyles(color bool) styles {
	p := lipgloss.NewStyle()
	s := styles{
		color:     color,
		title:     p.Bold(true),
		faint:     p.Faint(true),
		bold:      p.Bold(true),
		selected:  p.Reverse(true),
		errText:   p.Bold(true),
		infoText:  p,
		online:    p,
		offline:   p.Bold(true),
		unread:    p.Bold(true),
		separator: p.Faint(true),
		deleted:   p.Faint(true).Italic(true),
		me:        p.Bold(true),
	}
	if !color {
		s.senders = []lipgloss.Style{p.Bold(true)}
		return s
	}
	s.title = s.title.Foreground(lipgloss.Color("#87afff"))
	s.errText = s.errText.Foreground(lipgloss.Color("#ff5f5f"))
	s.infoText = s.infoText.Foreground(lipgloss.Color("#87d7af"))
	s.online = s.online.Foreground(lipgloss.Color("#5fd75f"))
	s.offline = s.offline.Foreground(lipgloss.Color("#ffaf5f"))
	s.unread = s.unread.Foreground(lipgloss.Color("#ffd75f"))
	s.me = s.me.Foreground(lipgloss.Color("#87d7ff"))
	for _, c := range senderPalette {
		s.senders = append(s.senders, p.Bold(true).Foreground(lipgloss.Color(c)))
	}
	return s
}

// sender is the style of an account's name: the same colour for the same
// account on every screen and every run.
func (s styles) sender(a identity.AccountID) lipgloss.Style {
	h := fnv.New32a()
	h.Write([]byte(a))
	return s.senders[int(h.Sum32()%uint32(len(s.senders)))]
}
