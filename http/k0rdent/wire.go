package k0rdent

import (
	"encoding/hex"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// The draft's scope levels. Keyhold's tenant is the draft's organization;
// its namespace nodes are the draft's folders and projects, told apart by
// the node's kind (events.Scope.Kind). A folder's or a project's scopeId
// is its Keyhold namespace path: dot-separated node names from the top,
// such as "eng" for a folder and "eng.ml-project" for a project in it, so
// a role held on a folder covers the projects below it. An organization's
// scopeId is the tenant id.
const (
	scopeOrganization = "organization"
	scopeFolder       = events.NodeFolder
	scopeProject      = events.NodeProject
)

// scopes are the draft's scope levels, in its order.
var scopes = []string{scopeOrganization, scopeFolder, scopeProject}

// wireScope returns a Keyhold scope as the draft's scope and scopeId.
func wireScope(s events.Scope) (scope, scopeID string) {
	if s.Level == events.ScopeTenant {
		return scopeOrganization, s.Target
	}
	return s.NodeKind(), s.Target
}

// domainScope returns the Keyhold scope the draft's scope and scopeId
// name; scope must be one of scopes.
func domainScope(scope, scopeID string) events.Scope {
	if scope == scopeOrganization {
		return events.Scope{Level: events.ScopeTenant, Target: scopeID}
	}
	return events.Scope{Level: events.ScopeNamespace, Target: scopeID, Kind: scope}
}

// Draft limits the dialect checks before a command sees the input, so
// they are answered as malformed (400) in the draft's terms.
const (
	maxDisplayName = commands.MaxServiceAccountName // the draft's 255
	maxDescription = commands.MaxDescription        // the draft's 1024
)

// Wire shapes: the draft's ServiceAccount and ServiceAccountCredential.

type serviceAccountJSON struct {
	SelfLink              string   `json:"selfLink"`
	UID                   string   `json:"uid"`
	ID                    string   `json:"id"`
	DisplayName           string   `json:"displayName"`
	Description           string   `json:"description"`
	ClientID              string   `json:"clientId"`
	Scope                 string   `json:"scope"`
	ScopeID               string   `json:"scopeId"`
	Roles                 []string `json:"roles"`
	Status                string   `json:"status"`
	CreatedBy             string   `json:"createdBy"`
	CreatedAt             string   `json:"createdAt"`
	UpdatedAt             string   `json:"updatedAt"`
	ActiveCredentialCount int      `json:"activeCredentialCount"`
}

// credentialJSON has no lastUsedAt or lastUsedIp: Keyhold does not record
// a credential's use (a token grant appends no event), and the draft makes
// both optional.
type credentialJSON struct {
	SelfLink         string `json:"selfLink"`
	UID              string `json:"uid"`
	ID               string `json:"id"`
	ServiceAccountID string `json:"serviceAccountId"`
	Status           string `json:"status"`
	ExpiresAt        string `json:"expiresAt"`
	CreatedBy        string `json:"createdBy"`
	CreatedAt        string `json:"createdAt"`
}

type newCredentialJSON struct {
	credentialJSON
	// ClientSecret is null when a retry of the request found the
	// credential created by its first attempt: the secret is shown once.
	ClientSecret *string `json:"clientSecret"`
}

type serviceAccountListJSON struct {
	ServiceAccounts []serviceAccountJSON `json:"serviceAccounts"`
	// NextPageToken is absent on the last page.
	NextPageToken string `json:"nextPageToken,omitempty"`
}

type credentialListJSON struct {
	Credentials   []credentialJSON `json:"credentials"`
	NextPageToken string           `json:"nextPageToken,omitempty"`
}

// timestamp formats times with millisecond precision, the precision both
// the log and the read tables keep.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// uidOf returns an id's UUID: Keyhold ids are ULIDs, 128 bits like a UUID,
// so the uid is the same bits in UUID notation (not a version 4 or 7
// UUID), immutable and unique as the id is.
func uidOf(id string) string {
	u, err := ulid.ParseStrict(id) // either case: Crockford base32
	if err != nil {
		return ""
	}
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	hex.Encode(b[9:13], u[4:6])
	hex.Encode(b[14:18], u[6:8])
	hex.Encode(b[19:23], u[8:10])
	hex.Encode(b[24:36], u[10:16])
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return string(b[:])
}

// wireID is a service account's id on the wire: its chosen name if it has
// one, else its Keyhold id. Paths take either (see pathRef); uid is always
// derived from the Keyhold id, which never changes.
func wireID(id, name string) string {
	if name != "" {
		return name
	}
	return id
}

func serviceAccountLink(id string) string { return Base + "/" + id }

func credentialLink(saID, id string) string { return Base + "/" + saID + "/credentials/" + id }

func nonNil(roles []string) []string {
	if roles == nil {
		return []string{}
	}
	return roles
}

// serviceAccountOf maps an account, read or just written (see
// commands.ServiceAccount.View), to the wire.
func serviceAccountOf(sa query.ServiceAccount) serviceAccountJSON {
	scope, scopeID := wireScope(sa.Scope())
	id := wireID(sa.ID, sa.Name)
	return serviceAccountJSON{SelfLink: serviceAccountLink(id), UID: uidOf(sa.ID), ID: id,
		DisplayName: sa.DisplayName, Description: sa.Description, ClientID: sa.ClientID,
		Scope: scope, ScopeID: scopeID, Roles: nonNil(sa.Roles), Status: sa.Status, CreatedBy: sa.CreatedBy,
		CreatedAt: timestamp(sa.CreatedAt), UpdatedAt: timestamp(sa.UpdatedAt), ActiveCredentialCount: sa.ActiveCredentials}
}

func credentialOf(c query.Credential, now time.Time) credentialJSON {
	status := query.CredentialActive
	if !c.Active(now) {
		status = query.CredentialExpired
	}
	saID := wireID(c.ServiceAccountID, c.ServiceAccountName)
	return credentialJSON{SelfLink: credentialLink(saID, c.ID), UID: uidOf(c.ID), ID: c.ID,
		ServiceAccountID: saID, Status: status, ExpiresAt: timestamp(c.ExpiresAt),
		CreatedBy: c.CreatedBy, CreatedAt: timestamp(c.CreatedAt)}
}

// wireFields names the commands' domain fields (snake_case) as this
// dialect's JSON does; a field not listed keeps its domain name.
var wireFields = map[string]string{
	"name":                        "id",
	"service_account_name":        "id",
	"display_name":                "displayName",
	"expires_at":                  "expiresAt",
	"scope.level":                 "scope",
	"scope.kind":                  "scope",
	"scope.target":                "scopeId",
	"scope_levels":                "scopeLevels",
	"credential_default_lifetime": "credentialDefaultLifetimeDays",
	"credential_max_lifetime":     "credentialMaxLifetimeDays",
}

// wireField maps a domain field name to this dialect's name for it.
func wireField(field string) string {
	if f, ok := wireFields[field]; ok {
		return f
	}
	return field
}

// wireQueryField names a query's paging inputs as this dialect's query
// parameters.
func wireQueryField(field string) string {
	switch field {
	case "limit":
		return "pageSize"
	case "cursor":
		return "pageToken"
	case "scope_target":
		return "scopeId"
	}
	return field
}
