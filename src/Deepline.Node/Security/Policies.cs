using Microsoft.AspNetCore.Authorization;

namespace Deepline.Node.Security;

/// <summary>
/// One policy per kind of act. Every endpoint names exactly one (see the README's roles table); admin is in
/// every policy because it may do everything.
/// </summary>
public static class Policies
{
    public const string Submit = "submit";
    public const string ReadRuns = "read-runs";
    public const string CancelRuns = "cancel-runs";
    public const string ReportTasks = "report-tasks";
    public const string Operate = "operate";
    public const string Admin = "admin";

    public static readonly IReadOnlyDictionary<string, Role[]> Roles = new Dictionary<string, Role[]>
    {
        [Submit] = [Role.submitter, Role.admin],
        [ReadRuns] = [Role.submitter, Role.@operator, Role.admin],
        [CancelRuns] = [Role.submitter, Role.@operator, Role.admin],
        [ReportTasks] = [Role.worker, Role.admin],
        [Operate] = [Role.@operator, Role.admin],
        [Admin] = [Role.admin],
    };

    public static void Add(AuthorizationOptions options)
    {
        foreach (var (name, roles) in Roles)
            options.AddPolicy(name, p => p
                .AddAuthenticationSchemes(KeyAuthentication.SchemeName)
                .RequireAuthenticatedUser()
                .RequireRole(roles.Select(r => r.ToString())));
        // An endpoint that forgot to name its policy is closed, not open.
        options.FallbackPolicy = new AuthorizationPolicyBuilder(KeyAuthentication.SchemeName).RequireRole(Role.admin.ToString()).Build();
    }
}
