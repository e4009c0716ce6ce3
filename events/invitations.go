package events

import "time"

// AggregateInvitation is the aggregate type of invitations, in their
// tenant: subject keyhold.<tenant>.invitation.<id>.
const AggregateInvitation = "invitation"

// InvitationRole is a role an invitation grants on acceptance, at each of
// Namespaces, or across the tenant when there are none.
type InvitationRole struct {
	Role       string   `json:"role"`
	Namespaces []string `json:"namespaces,omitempty"`
}

// InvitationCreated invites an email address into a tenant. The address
// is personal data: it is stored only sealed (PersonalEnc, the Email of a
// Personal, under the invitation's own data key), so erasing the
// invitation's key erases it. The registration token of the invitation is
// never stored: it is derived from the invitation's id on demand.
type InvitationCreated struct {
	// Personal is never stored; it carries the address in the clear to
	// the aggregate that applies the event (see UserCreated).
	Personal *Personal `json:"personal,omitempty"`
	// PersonalEnc is Personal as JSON sealed with AES-256-GCM under the
	// invitation's data key, with the invitation id and event type as
	// additional data.
	PersonalEnc []byte           `json:"personal_enc,omitempty"`
	Roles       []InvitationRole `json:"roles,omitempty"`
	Groups      []string         `json:"groups,omitempty"`
	Superadmin  bool             `json:"superadmin,omitempty"`
	// CreateUser allows registering a new user from the invitation
	// (Kestra's createUserIfNotExist).
	CreateUser bool      `json:"create_user,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	// InvitedBy is the id of the principal that invited.
	InvitedBy string `json:"invited_by"`
}

// EventType implements Event.
func (InvitationCreated) EventType() string { return "iam.invitation.created" }

// InvitationAccepted ends an invitation: UserID got what it grants, in the
// same atomic batch. UserCreated is set when the user registered from the
// invitation. The invitation's data key is destroyed right after: the
// address lives on as the user's.
type InvitationAccepted struct {
	UserID      string `json:"user_id"`
	UserCreated bool   `json:"user_created,omitempty"`
}

// EventType implements Event.
func (InvitationAccepted) EventType() string { return "iam.invitation.accepted" }

// InvitationDeleted withdraws an invitation; its data key is destroyed
// right after, which erases the address.
type InvitationDeleted struct{}

// EventType implements Event.
func (InvitationDeleted) EventType() string { return "iam.invitation.deleted" }
