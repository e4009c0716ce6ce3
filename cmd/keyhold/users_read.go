package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lib/pq"
	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/events"
)

// userRow is a user as keyhold users list and show print it.
type userRow struct {
	ID          string         `db:"id" json:"user_id"`
	Username    string         `db:"username" json:"username"`
	Email       string         `db:"email" json:"email"`
	FirstName   string         `db:"first_name" json:"first_name"`
	LastName    string         `db:"last_name" json:"last_name"`
	DisplayName string         `db:"display_name" json:"display_name"`
	Status      string         `db:"status" json:"status"`
	Superadmin  bool           `db:"superadmin" json:"superadmin"`
	Tenants     pq.StringArray `db:"tenants" json:"tenants"`
	CreatedAt   time.Time      `db:"created_at" json:"created_at"`
}

// readUsers brings the read tables up to date and returns the users, or
// the one with id when id is set.
func readUsers(ctx context.Context, cfg *config, id string) ([]userRow, error) {
	e, runner, err := openRunner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := runner.Prepare(ctx); err != nil {
		return nil, err
	}
	if err := runner.CatchUp(ctx); err != nil {
		return nil, err
	}
	rows := []userRow{}
	err = e.db.SQL().SelectContext(ctx, &rows, `SELECT u.id, u.username, u.email, u.first_name, u.last_name, u.display_name, u.status, u.superadmin,
		ARRAY(SELECT t.tenant FROM user_tenants t WHERE t.user_id = u.id ORDER BY t.tenant) AS tenants, u.created_at
		FROM users u WHERE $1 = '' OR u.id = $1 ORDER BY u.id`, id)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return rows, err
}

func printUsers(cmd *cobra.Command, rows []userRow, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSERNAME\tEMAIL\tNAME\tSTATUS\tSUPERADMIN\tTENANTS")
	for _, r := range rows {
		name := r.DisplayName
		if name == "" {
			name = strings.TrimSpace(r.FirstName + " " + r.LastName)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", r.ID, r.Username, r.Email, name, r.Status, r.Superadmin, strings.Join(r.Tenants, ","))
	}
	return w.Flush()
}

func newUsersList(cfg *config) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List users",
		Long:    "List users as an aligned table, or a JSON array with --json. Brings the read tables up to date first.",
		Example: "  keyhold users list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := readUsers(cmd.Context(), cfg, "")
			if err != nil {
				return err
			}
			return printUsers(cmd, rows, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cfg.use(cmd, tableFlags...)
}

func newUsersShow(cfg *config) *cobra.Command {
	var asJSON bool
	var id string
	cmd := &cobra.Command{
		Use:     "show --user ID",
		Short:   "Show one user",
		Long:    "Show one user as an aligned table, or a JSON object with --json. Brings the read tables up to date first.",
		Example: "  keyhold users show --user 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !events.ValidToken(id) {
				return errors.New("refused: --user: must be a user id")
			}
			rows, err := readUsers(cmd.Context(), cfg, id)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				return fmt.Errorf("user %s not found", id)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rows[0])
			}
			return printUsers(cmd, rows, false)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().StringVar(&id, "user", "", "the user's id (required)")
	_ = cmd.MarkFlagRequired("user")
	return cfg.use(cmd, tableFlags...)
}
