package effects

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
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
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, sub, goose.WithSessionLocker(locker), goose.WithTableName(versionTable))
	if err != nil {
		return fmt.Errorf("effects migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply effects migrations: %w", err)
	}
	return nil
}
