package commands

import (
	"context"
	"errors"
	"fmt"
	"github.com/keyhold/keyhold/query"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
)

// Input limits.
const (
	MaxDisplayName = 128
	MaxDescription = 1024
	MaxRoles       = 32
	// MaxNamespace bounds a namespace node's name (query.ValidNamespace).
	MaxNamespace = query.MaxNamespace
)

// MaxServiceAccountName is longer than MaxDisplayName: k0rdent's contract
// allows service-account names of 255 characters.
const MaxServiceAccountName = 255

var (
	usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)
)

// MaxServiceAccountNameLength bounds a service account's chosen name
// (k0rdent's client-chosen id: 1 to 63 characters).
const MaxServiceAccountNameLength = 63

// serviceAccountNamePattern is k0rdent's id pattern. A name starts with a
// letter and Keyhold's ids (ULIDs) with a digit, so a reference to an
// account is one or the other, never both (see IsServiceAccountName).
var serviceAccountNamePattern = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// ValidServiceAccountName reports whether s can be a service account's
// chosen name: 1 to 63 lowercase letters, digits and dashes, starting with
// a letter and not ending with a dash, and not starting with the client id
// prefix (a name must never read as another account's client id).
func ValidServiceAccountName(s string) bool {
	return len(s) <= MaxServiceAccountNameLength && serviceAccountNamePattern.MatchString(s) && !strings.HasPrefix(s, ClientIDPrefix)
}

// IsServiceAccountName reports whether ref, a reference to a service
// account, is a chosen name rather than the account's id, as the read
// side tells them apart.
func IsServiceAccountName(ref string) bool { return query.IsServiceAccountName(ref) }

// ValidTenantID reports whether id is a usable tenant id: 1 to 63
// lowercase letters, digits and dashes, starting with a letter or digit.
func ValidTenantID(id string) bool { return query.ValidTenantID(id) }

// Reasons a text field (a name or a description) is refused. Each comes
// inside an *Error of kind ErrInvalid naming the field, so errors.Is
// matches both the kind and the reason.
var (
	// ErrBlank means a required text is empty.
	ErrBlank = errors.New("blank text")
	// ErrTooLong means a text has more characters than its field allows.
	ErrTooLong = errors.New("text too long")
	// ErrNotUTF8 means a text is not valid UTF-8.
	ErrNotUTF8 = errors.New("text not UTF-8")
	// ErrControlCharacter means a text holds a control character (NUL,
	// tab, carriage return, DEL, C1 controls, line and paragraph
	// separators; a newline too, except in multi-line text).
	ErrControlCharacter = errors.New("control character")
	// ErrBidiControl means a text holds a bidirectional embedding,
	// override or isolate (U+202A to U+202E, U+2066 to U+2069), which can
	// make it display in an order other than the stored one.
	ErrBidiControl = errors.New("bidirectional control character")
	// ErrByteOrderMark means a text holds U+FEFF.
	ErrByteOrderMark = errors.New("byte order mark")
	// ErrNoncharacter means a text holds a Unicode noncharacter
	// (U+FDD0 to U+FDEF, or U+FFFE and U+FFFF of any plane).
	ErrNoncharacter = errors.New("noncharacter")
	// ErrInvisible means a text holds only spaces and invisible
	// characters, so it would show as nothing.
	ErrInvisible = errors.New("only invisible characters")
)

// textKind is what a text field allows: names and descriptions differ in
// length, whether they are required and whether they may span lines, and
// follow validText otherwise.
type textKind struct {
	max       int
	required  bool
	multiline bool
}

var (
	nameText        = textKind{max: MaxDisplayName, required: true}
	saNameText      = textKind{max: MaxServiceAccountName, required: true}
	descriptionText = textKind{max: MaxDescription, multiline: true}
)

// validText is Keyhold's one rule for human-readable text. It refuses, with
// the reason as Error.Reason and in the message: invalid UTF-8, too many
// characters, control characters (a newline is allowed in multi-line
// text only), bidirectional controls, a byte order mark, noncharacters,
// and a value made only of spaces and invisible characters. An empty
// value is refused only when required.
func validText(field, s string, k textKind) error {
	refuse := func(reason error, format string, args ...any) error {
		return &Error{Kind: ErrInvalid, Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if !utf8.ValidString(s) {
		return refuse(ErrNotUTF8, "must be valid UTF-8")
	}
	if s == "" {
		if k.required {
			return refuse(ErrBlank, "is required and must not be blank")
		}
		return nil
	}
	if n := utf8.RuneCountInString(s); n > k.max {
		return refuse(ErrTooLong, "must be at most %d characters (got %d)", k.max, n)
	}
	visible := false
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r == '\n' && k.multiline:
		case r == '\n':
			return refuse(ErrControlCharacter, "must be a single line: found a newline (U+000A) at character %d; control characters are not allowed", pos)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			allowed := "no control characters are allowed"
			if k.multiline {
				allowed = "control characters other than newline (U+000A) are not allowed"
			}
			return refuse(ErrControlCharacter, "must not contain control characters: found %U%s at character %d; %s", r, controlName(r), pos, allowed)
		case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return refuse(ErrBidiControl, "must not contain bidirectional control characters: found %U at character %d, which can make text display in another order than it is stored", r, pos)
		case r == '\ufeff':
			return refuse(ErrByteOrderMark, "must not contain a byte order mark (U+FEFF): found at character %d", pos)
		case r >= '\ufdd0' && r <= '\ufdef', r&0xfffe == 0xfffe:
			return refuse(ErrNoncharacter, "must not contain Unicode noncharacters: found %U at character %d", r, pos)
		case !invisible(r):
			visible = true
		}
	}
	if !visible {
		return refuse(ErrInvisible, "must contain a visible character: it holds only spaces or invisible characters")
	}
	return nil
}

// controlName names the control characters clients send most by mistake.
func controlName(r rune) string {
	switch r {
	case 0:
		return " (NUL)"
	case '\t':
		return " (tab)"
	case '\r':
		return " (carriage return)"
	case 0x7f:
		return " (DEL)"
	case '\u2028':
		return " (line separator)"
	case '\u2029':
		return " (paragraph separator)"
	}
	return ""
}

// invisible reports whether r shows as nothing on its own: white space,
// format characters (zero-width spaces and joiners, marks), variation
// selectors and the blank letters fonts draw empty.
func invisible(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800':
		return true
	}
	return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r)
}

func validUsername(s string) error {
	if !usernamePattern.MatchString(s) {
		return invalid("username", "must be 1-64 characters of letters, digits and . _ @ + -, starting with a letter or digit")
	}
	return nil
}

func validEmail(s string) error {
	if !query.ValidEmail(s) {
		return invalid("email", "must be a plain address like name@example.com")
	}
	return nil
}

func validNamespace(target string) error {
	if !query.ValidNamespace(target) {
		return invalid("scope.target", "must be a namespace like team.app (lowercase letters, digits, _ and -, dot-separated, at most %d characters)", MaxNamespace)
	}
	return nil
}

// validScope checks a service-account scope against the tenant's allowed
// levels and fills in the tenant target.
func validScope(t *Tenant, s events.Scope) (events.Scope, error) {
	switch s.Level {
	case "":
		return s, invalid("scope.level", "is required: one of %s", strings.Join(t.scopeLevels, ", "))
	case events.ScopeTenant:
		if s.Target != "" && s.Target != t.id {
			return s, invalid("scope.target", "must be empty or the caller's tenant %q for level tenant", t.id)
		}
		if s.Kind != "" {
			return s, invalid("scope.kind", "must be empty for level tenant: only namespace nodes have a kind")
		}
		s.Target = t.id
	case events.ScopeNamespace:
		if err := validNamespace(s.Target); err != nil {
			return s, err
		}
		if s.Kind != "" && !slices.Contains(events.NodeKinds, s.Kind) {
			return s, invalid("scope.kind", "must be %s, not %q", strings.Join(events.NodeKinds, " or "), s.Kind)
		}
		s.Kind = s.NodeKind()
	default:
		return s, invalid("scope.level", "must be tenant or namespace, not %q", s.Level)
	}
	if !slices.Contains(t.scopeLevels, s.Level) {
		return s, invalid("scope.level", "level %q is not allowed by the tenant's policy (allowed: %s)", s.Level, strings.Join(t.scopeLevels, ", "))
	}
	return s, nil
}

// validRoles checks role names and returns them sorted without duplicates.
func validRoles(roles []string) ([]string, error) {
	if len(roles) > MaxRoles {
		return nil, invalid("roles", "must hold at most %d roles", MaxRoles)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !events.ValidToken(r) {
			return nil, invalid("roles", "%q is not a role id", r)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// assignable checks that roles exist in tenant and that caller holds
// their rules within scope: assigning a role is granting its rules. The
// error names the first role whose rules the caller lacks.
func (b base) assignable(ctx context.Context, caller auth.Principal, tenant string, scope events.Scope, roles []string) error {
	for _, id := range roles {
		rules, err := b.roleRules(ctx, tenant, "roles", []string{id})
		if err != nil {
			return err
		}
		if err := b.scopeDown(caller, rules, auth.ScopeOf(tenant, scope), "roles", fmt.Sprintf("assign role %q", id)); err != nil {
			return err
		}
	}
	return nil
}

func validStatus(s string) error {
	if !slices.Contains(Statuses, s) {
		return invalid("status", "must be active or disabled, not %q", s)
	}
	return nil
}

// validPassword applies auth.CheckPassword; the error names the field and
// the rule, never the password.
func validPassword(password, username, email string) error {
	if err := auth.CheckPassword(password, username, email); err != nil {
		return &Error{Kind: ErrInvalid, Field: "password", Reason: auth.ErrWeakPassword, Message: strings.TrimPrefix(err.Error(), auth.ErrWeakPassword.Error()+": ")}
	}
	return nil
}
