package commands

import (
	"errors"
	"strings"
	"testing"
)

func TestValidText(t *testing.T) {
	tests := []struct {
		name    string
		kind    textKind
		value   string
		want    error  // nil: accepted
		message string // part of the message naming the reason
	}{
		{"plain name", nameText, "CI deployer", nil, ""},
		{"name with accents and emoji", nameText, "Déploiement 🚀", nil, ""},
		{"name with a zero-width joiner inside", nameText, "👩\u200d💻 bot", nil, ""},
		{"empty description", descriptionText, "", nil, ""},
		{"multi-line description", descriptionText, "line one\nline two", nil, ""},
		{"empty name", nameText, "", ErrBlank, "required"},
		{"name of spaces", nameText, "   ", ErrInvisible, "visible character"},
		{"description of spaces", descriptionText, " \n ", ErrInvisible, "visible character"},
		{"name of zero-width spaces", nameText, "\u200b\u200b", ErrInvisible, "invisible"},
		{"name of Hangul fillers", nameText, "\u3164", ErrInvisible, "invisible"},
		{"name too long", nameText, strings.Repeat("é", MaxDisplayName+1), ErrTooLong, "at most 128"},
		{"not UTF-8", nameText, "a\xff", ErrNotUTF8, "UTF-8"},
		{"tab in a name", nameText, "a\tb", ErrControlCharacter, "U+0009 (tab)"},
		{"tab in a description", descriptionText, "a\tb", ErrControlCharacter, "control characters other than newline"},
		{"newline in a name", nameText, "a\nb", ErrControlCharacter, "single line"},
		{"carriage return in a description", descriptionText, "a\r\nb", ErrControlCharacter, "carriage return"},
		{"NUL", nameText, "a\x00b", ErrControlCharacter, "NUL"},
		{"DEL", nameText, "a\x7fb", ErrControlCharacter, "DEL"},
		{"C1 control", nameText, "a\u0085b", ErrControlCharacter, "U+0085"},
		{"line separator", descriptionText, "a\u2028b", ErrControlCharacter, "line separator"},
		{"right-to-left override", nameText, "abc\u202egpj.exe", ErrBidiControl, "bidirectional"},
		{"left-to-right embedding", descriptionText, "\u202aabc", ErrBidiControl, "U+202A"},
		{"first strong isolate", nameText, "a\u2068b", ErrBidiControl, "U+2068"},
		{"pop directional isolate", nameText, "a\u2069b", ErrBidiControl, "bidirectional"},
		{"byte order mark", nameText, "\ufeffname", ErrByteOrderMark, "byte order mark"},
		{"noncharacter U+FFFF", nameText, "a\uffff", ErrNoncharacter, "noncharacter"},
		{"noncharacter U+FDD0", descriptionText, "a\ufdd0", ErrNoncharacter, "U+FDD0"},
		{"noncharacter of plane 1", nameText, "a\U0001fffe", ErrNoncharacter, "U+1FFFE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validText("display_name", tt.value, tt.kind)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalid) || !errors.As(err, &ce) {
				t.Fatalf("err = %v, want %v and ErrInvalid", err, tt.want)
			}
			if ce.Field != "display_name" || ce.Code() != "invalid_input" || !strings.Contains(ce.Message, tt.message) {
				t.Fatalf("field %q message %q, want displayName and a message mentioning %q", ce.Field, ce.Message, tt.message)
			}
		})
	}
}
