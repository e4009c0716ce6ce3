package main

import (
	"github.com/spf13/cobra"

	"github.com/keyhold/keyhold/auth"
	"github.com/keyhold/keyhold/commands"
	"github.com/keyhold/keyhold/events"
)

func newUsers(cfg *config) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "users",
		Short: "Create, list, show, disable, enable or delete users and set their passwords",
		Long: `Manage users at instance level. Every subcommand acts as the operator (an instance
superadmin) and works whether or not keyhold serve is running; a running server
honours the change as soon as its directory has read it from the log. The writes
print one JSON object; list and show print an aligned table, or JSON with --json.`,
	})
	sys := commands.Meta{Caller: auth.System()}
	userResult := func(res commands.UserResult) map[string]any {
		u := res.User
		if u == nil {
			return nil
		}
		p := u.Personal()
		return map[string]any{"user_id": u.ID(), "username": p.Username, "email": p.Email, "first_name": p.FirstName,
			"last_name": p.LastName, "display_name": p.DisplayName, "status": u.Status(), "superadmin": u.Superadmin(),
			"has_password": u.HasPassword(), "tenants": u.Tenants()}
	}

	var c commands.CreateUser
	var passwordStdin bool
	create := &cobra.Command{
		Use:   "create --username NAME --email ADDR",
		Short: "Create a user",
		Long: `Create a user. Username and email are unique in the instance (email ignoring case;
it is stored lower-cased). With --password-stdin the first line of stdin is the
user's password, for HTTP Basic; only its argon2id verifier is stored.`,
		Example: `  keyhold users create --username alice --email alice@acme.example --tenant acme --password-stdin < password.txt`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Meta = sys
			if passwordStdin {
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				c.Password = pw
			}
			return withCommands(cmd, cfg, c.Validate, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.CreateUser.Handle(cmd.Context(), c)
				return userResult(res), err
			})
		},
	}
	create.Flags().StringVar(&c.Username, "username", "", "the username: letters, digits and . _ @ + - (required)")
	create.Flags().StringVar(&c.Email, "email", "", "the email address (required)")
	create.Flags().StringVar(&c.FirstName, "first-name", "", "the first name")
	create.Flags().StringVar(&c.LastName, "last-name", "", "the last name")
	create.Flags().StringVar(&c.DisplayName, "display-name", "", "the name to display")
	create.Flags().BoolVar(&c.Superadmin, "superadmin", false, "make the user an instance superadmin")
	create.Flags().StringSliceVar(&c.Tenants, "tenant", nil, "a tenant the user gets access to (repeatable)")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the user's password from the first line of stdin")
	for _, f := range []string{"username", "email"} {
		_ = create.MarkFlagRequired(f)
	}
	cmd.AddCommand(cfg.use(create, tableFlags...))

	var user string
	idOnly := func() error {
		if !events.ValidToken(user) {
			return &commands.Error{Kind: commands.ErrInvalid, Field: "user", Message: "must be a user id"}
		}
		return nil
	}
	status := func(use, short, st string) *cobra.Command {
		return &cobra.Command{
			Use:     use + " --user ID",
			Short:   short,
			Long:    short + ". Disabling ends every credential's access at once; enabling restores it.",
			Example: "  keyhold users " + use + " --user 01m8bwn9bmf8bvrrbfke65f19r",
			Args:    noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withCommands(cmd, cfg, idOnly, func(cmds *commands.Commands) (any, error) {
					res, err := cmds.SetUserStatus.Handle(cmd.Context(), commands.SetUserStatus{Meta: sys, UserID: user, Status: st})
					return userResult(res), err
				})
			},
		}
	}
	del := &cobra.Command{
		Use:   "delete --user ID",
		Short: "Delete a user",
		Long: `Delete a user with every credential and grant. Its username and email are released
and can be used again; the id is never reused.`,
		Example: "  keyhold users delete --user 01m8bwn9bmf8bvrrbfke65f19r",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCommands(cmd, cfg, idOnly, func(cmds *commands.Commands) (any, error) {
				_, err := cmds.DeleteUser.Handle(cmd.Context(), commands.DeleteUser{Meta: sys, UserID: user})
				return map[string]any{"user_id": user, "deleted": true}, err
			})
		},
	}
	var pwStdin bool
	setPassword := &cobra.Command{
		Use:   "set-password --user ID --password-stdin",
		Short: "Set a user's password",
		Long: `Set a user's password from the first line of stdin: at least 12 characters, not the
username or email. The old password stops working at once; only the argon2id verifier
is stored.`,
		Example: `  keyhold users set-password --user 01m8bwn9bmf8bvrrbfke65f19r --password-stdin < password.txt`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !pwStdin {
				return refusal(&commands.Error{Kind: commands.ErrInvalid, Field: "password-stdin", Message: "is required: the password is read from stdin only"})
			}
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			return withCommands(cmd, cfg, idOnly, func(cmds *commands.Commands) (any, error) {
				res, err := cmds.SetPassword.Handle(cmd.Context(), commands.SetPassword{Meta: sys, UserID: user, Password: pw})
				return userResult(res), err
			})
		},
	}
	setPassword.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin (required)")
	for _, s := range []*cobra.Command{status("disable", "Disable a user", events.UserStatusDisabled), status("enable", "Enable a user", events.UserStatusActive), del, setPassword} {
		s.Flags().StringVar(&user, "user", "", "the user's id (required)")
		_ = s.MarkFlagRequired("user")
		cmd.AddCommand(cfg.use(s, tableFlags...))
	}
	cmd.AddCommand(newUsersList(cfg), newUsersShow(cfg))
	return cmd
}
