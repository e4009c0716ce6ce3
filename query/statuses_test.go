package query_test

import (
	"slices"
	"testing"

	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/query"
)

// The list enumerates statuses a filter leaves open: a status the write
// side can record but the list does not know would drop out of lists.
func TestServiceAccountStatusesMatchTheWriteSide(t *testing.T) {
	if !slices.Equal(query.ServiceAccountStatuses, commands.Statuses) {
		t.Fatalf("query.ServiceAccountStatuses = %v, commands.Statuses = %v", query.ServiceAccountStatuses, commands.Statuses)
	}
}
