package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/events"
	"github.com/keyhold/keyhold/query"
)

// userRow is a user as keyhold users list and show print it.
type userRow struct {
	ID          string    `json:"user_id"`
	Username    string    `json:"username"`
	Email       string    `json:"email"`
	FirstName   string    `json:"first_name"`
	LastName    string    `json:"last_name"`
	DisplayName string    `json:"display_name"`
	Status      string    `json:"status"`
	Superadmin  bool      `json:"superadmin"`
	Tenants     []string  `json:"tenants"`
	CreatedAt   time.Time `json:"created_at"`
}

func userRowOf(u query.User) userRow {
	tenants := make([]string, len(u.Tenants))
	for i, t := range u.Tenants {
		tenants[i] = t.ID
	}
	return userRow{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		DisplayName: u.DisplayName, Status: u.Status, Superadmin: u.Superadmin, Tenants: tenants, CreatedAt: u.CreatedAt}
}

// readUsers brings the read tables up to date and returns the users in id
// order, or the one with id when id is set (none if it does not exist).
func readUsers(ctx context.Context, cfg *config, id string) ([]userRow, error) {
	rows := []userRow{}
	err := readTables(ctx, cfg, func(q *query.Queries) error {
		if id != "" {
			u, err := q.User(ctx, auth.System(), id)
			if errors.Is(err, query.ErrNotFound) {
				return nil
			}
			rows = append(rows, userRowOf(u))
			return err
		}
		for page := 1; ; page++ {
			us, total, err := q.SearchUsers(ctx, auth.System(), query.Search{Page: page, Size: query.MaxPageSize, Sort: []query.SortBy{{Field: "id"}}})
			if err != nil {
				return err
			}
			for _, u := range us {
				rows = append(rows, userRowOf(u))
			}
			if len(us) == 0 || len(rows) >= total {
				return nil
			}
		}
	})
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
