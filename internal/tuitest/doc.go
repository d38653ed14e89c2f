// Package tuitest is the end-to-end test of `parley chat`: it builds the
// real parley binary, starts `parley serve` on loopback, creates profiles
// with `parley init`, runs `parley chat` for each in its own tmux session
// and types into them with `tmux send-keys`, reading the screens back with
// `tmux capture-pane`. It is skipped only where tmux is not installed.
//
// With PARLEY_UPDATE_SCREENS=1 the test also writes the text captures of the
// main screens to docs/screens/.
package tuitest
