package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// readPassword reads a password from the first line of r (the line end is
// not part of it). The password never appears in an error.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(r, 4096).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: read stdin: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("--password-stdin: stdin holds no password")
	}
	return pw, nil
}
