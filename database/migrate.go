package database

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate applies the goose migrations in migrations (SQL files at its
// root), keeping their versions in table, so that each package's control
// tables number their files on their own. It is safe to run from several
// processes at once: a Postgres session lock serialises them.
func Migrate(ctx context.Context, db *sqlx.DB, migrations fs.FS, table string) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, migrations, goose.WithSessionLocker(locker), goose.WithTableName(table))
	if err != nil {
		return fmt.Errorf("migrations %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations %s: %w", table, err)
	}
	return nil
}
