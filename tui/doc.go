// Package tui is Parley's terminal user interface, the model behind
// `parley chat`. It is a Bubble Tea program on top of a [client.Client]:
// [Run] starts the client's sync loop and the UI together and returns when
// the user quits; [New] builds the [Model] alone, for tests that drive it
// with messages.
//
// The UI never blocks on the network: every SDK call runs as a tea.Cmd and
// reports back with a message, and live updates arrive from the client's
// event stream. Errors are shown in the status line; the UI only exits when
// the user asks it to.
package tui
