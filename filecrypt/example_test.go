package filecrypt_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"strings"

	"github.com/parley-im/parley/filecrypt"
)

func Example() {
	key, err := filecrypt.NewKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	// Encrypt: stream the plaintext through an EncryptingReader (or write
	// it to an Encrypter).
	enc, err := filecrypt.NewEncryptingReader(strings.NewReader("hello, file"), key)
	if err != nil {
		panic(err)
	}
	var ciphertext bytes.Buffer
	if _, err := io.Copy(&ciphertext, enc); err != nil {
		panic(err)
	}
	// Decrypt: every chunk is authenticated before it is released.
	dec, err := filecrypt.NewDecrypter(&ciphertext, key)
	if err != nil {
		panic(err)
	}
	plain, err := io.ReadAll(dec)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(plain))
	// Output: hello, file
}

func ExampleFileRef() {
	ref := filecrypt.FileRef{Size: 11, Name: "hello.txt", MediaType: "text/plain"}
	data, err := ref.MarshalBinary() // put data inside an end-to-end encrypted message
	if err != nil {
		panic(err)
	}
	got, err := filecrypt.ParseFileRef(data)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Name, got.Size, got.MediaType)
	// Output: hello.txt 11 text/plain
}
