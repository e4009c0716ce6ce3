// Package projections folds the event log into Postgres read tables.
//
// Each projector owns its tables and a checkpoint (the stream sequence it
// has applied up to), updated in the same transaction as its rows, so a
// crash never applies an event twice or skips one. A projector's tables
// live in a schema per generation (iam_g1, iam_g2, ...) and are read
// through views in the public schema; a rebuild fills a new generation
// from sequence 0 and swaps the views in one transaction, so reads never
// stop.
package projections

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/keyhold/keyhold/database"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the embedded control-table migrations. It is safe to run
// from several processes at once: a Postgres session lock serialises them.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// goose's default table: where every earlier version kept them.
	return database.Migrate(ctx, db, sub, goose.DefaultTablename)
}
