package effects

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jmoiron/sqlx"

	"github.com/keyhold/keyhold/database"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable keeps these migrations' versions apart from the projections'
// control migrations, so the two sets number their files independently.
const versionTable = "effects_db_version"

// Migrate applies the embedded migrations of the reactions' control
// tables. It is safe to run from several processes at once: a Postgres
// session lock serialises them.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return database.Migrate(ctx, db, sub, versionTable)
}
