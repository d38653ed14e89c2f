package identity_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/parley-im/parley/identity"
)

// The main flow: an account is made on the first device, which certifies its
// own MLS signature key; another member checks the certificate chain and
// compares safety numbers with the account's owner.
func Example() {
	// First device: make the account and a device.
	account, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	devicePub, devicePriv, err := ed25519.GenerateKey(rand.Reader) // the device's MLS signature key
	if err != nil {
		panic(err)
	}
	deviceID, err := identity.NewDeviceID(rand.Reader)
	if err != nil {
		panic(err)
	}
	cert, err := identity.IssueDeviceCertificate(account, deviceID, devicePub,
		identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		panic(err)
	}
	credential := cert.Marshal() // the identity of the device's MLS BasicCredential

	// Another member receives the credential, e.g. in a KeyPackage.
	got, err := identity.ParseDeviceCertificate(credential)
	if err != nil {
		panic(err)
	}
	fmt.Println("certificate verifies:", got.Verify() == nil)
	fmt.Println("account matches:", got.AccountID() == account.ID())

	// The server checks a login challenge signed by the device key.
	challenge := []byte("nonce from the server")
	sig, err := identity.SignAsDevice(devicePriv, identity.DomainDeviceAuth, challenge, rand.Reader)
	if err != nil {
		panic(err)
	}
	fmt.Println("device signature verifies:", got.VerifyDeviceSignature(identity.DomainDeviceAuth, challenge, sig) == nil)

	// The two people compare one number for all of each other's devices.
	peer, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	mine := identity.SafetyNumber(account.Public(), got.AccountKey())
	theirs := identity.SafetyNumber(got.AccountKey(), account.Public())
	fmt.Println("same safety number on both sides:", mine == theirs)
	fmt.Println("differs for another account:", mine != identity.SafetyNumber(peer.Public(), got.AccountKey()))

	// Output:
	// certificate verifies: true
	// account matches: true
	// device signature verifies: true
	// same safety number on both sides: true
	// differs for another account: true
}

func ExampleSafetyNumber() {
	alice := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	bob := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	n := identity.SafetyNumber(alice, bob)
	fmt.Println(n[:35])
	fmt.Println(n[36:])
	fmt.Println(identity.VerifySafetyQR(identity.SafetyQRPayload(bob, alice), alice, bob))
	// Output:
	// 94156 88866 12494 99684 45377 16758
	// 00911 19873 20854 64686 99878 14468
	// true
}

func ExampleUsernameSkeleton() {
	for _, name := range []string{"Alice", "a1ice", "rnallory"} {
		folded, _ := identity.FoldUsername(name)
		skeleton, _ := identity.UsernameSkeleton(name)
		fmt.Println(folded, skeleton)
	}
	_, err := identity.FoldUsername("аlice") // Cyrillic а
	fmt.Println(err)
	// Output:
	// alice allce
	// a1ice allce
	// rnallory mallory
	// identity: invalid username: only ASCII letters, digits and '_' are allowed
}

func ExampleParseRecoveryWords() {
	var key identity.RecoveryKey // from identity.NewRecoveryKey(rand.Reader)
	key[0] = 1
	words := identity.RecoveryWords(key)
	fmt.Println(len(words), "words, starting", strings.Join(words[:3], " "))

	// The user types them back with a typo in word 2.
	words[1] = "alrm"
	_, err := identity.ParseRecoveryWords(strings.ToUpper(strings.Join(words, "  ")))
	fmt.Println(err)
	// Output:
	// 33 words, starting album alarm alarm
	// identity: recovery word 2 "alrm" is not in the word list (did you mean "alarm"?)
}
