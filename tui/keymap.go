package tui

// helpSection is one block of the help screen.
type helpSection struct {
	title string
	keys  [][2]string
}

// helpText lists every key and command; the help screen (?) shows it.
var helpText = []helpSection{
	{"Everywhere", [][2]string{
		{"?", "this help (Esc closes it)"},
		{"ctrl+c", "quit"},
		{"esc", "back"},
	}},
	{"Chat list", [][2]string{
		{"↑/↓ j/k", "move"},
		{"enter", "open the chat"},
		{"/", "search chats by name"},
		{"n", "new chat: an address, or a /command"},
		{"v", "verify the safety number of the selected 1:1 chat"},
		{"d", "devices (and revocation)"},
		{"l", "link a new device"},
		{"s", "privacy settings"},
		{"r", "recovery key (shown once)"},
		{"q", "quit"},
	}},
	{"Conversation", [][2]string{
		{"enter", "send"},
		{"alt+enter ctrl+j", "new line"},
		{"pgup/pgdn", "scroll (older messages load as you go)"},
		{"↑ (empty input)", "select a message; then ↑/↓ move"},
		{"r e x", "reply to / edit / delete the selected message"},
		{"s", "save the selected file to the current folder"},
		{"1-5 +", "react 👍 ❤ 😂 😮 😢, or type a reaction"},
		{"esc", "cancel reply or edit, leave selection, back"},
	}},
	{"Commands", [][2]string{
		{"/chat ADDRESS", "open a 1:1 chat"},
		{"/create NAME MEMBER...", "create a group"},
		{"/add MEMBER...", "add members (admins)"},
		{"/remove MEMBER...", "remove members (admins)"},
		{"/rename NAME", "rename the group (admins)"},
		{"/leave", "leave the chat"},
		{"/file PATH", "send a file (with a progress bar)"},
		{"/verify [ADDRESS]", "safety number"},
		{"/disappear DUR|off", "disappearing messages in this chat"},
		{"/settings /devices /link", "open those screens"},
		{"/recovery", "the recovery key screen"},
	}},
}

// quickReactions are the reactions keys 1-5 send.
var quickReactions = []string{"👍", "❤", "😂", "😮", "😢"}
