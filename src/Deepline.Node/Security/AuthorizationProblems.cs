using Deepline.Node.Configuration;
using Deepline.Node.Http;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Deepline.Node.Security;

/// <summary>Refusals as problem+json that say what was missing: no key 401, a key without the role 403.</summary>
public sealed class AuthorizationProblems(DeeplineConfig config) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Succeeded)
        {
            await _default.HandleAsync(next, context, policy, result);
            return;
        }
        await Refusal(context, Needed(policy)).ExecuteAsync(context);
    }

    private IResult Refusal(HttpContext context, Role[] needed)
    {
        if (context.Items[KeyAuthentication.RefusalKey] is KeyAuthentication.Refusal r)
            return Problems.Of(r.Status, r.Title, r.Detail, r.Field);
        var user = context.User;
        if (user.Identity?.IsAuthenticated != true)
            return Problems.Of(401, "Unauthorized", $"this endpoint needs an API key with role {Describe(needed)}: send Authorization: Bearer <key>", "Authorization");
        if (!needed.SequenceEqual([Role.admin]) || !user.IsOpen())
            return Problems.Of(403, "Forbidden", $"the key '{user.Name()}' may not call this endpoint: it needs role {Describe(needed)}");
        // An open node (no keys file): with an admin key, admin endpoints take it; without one only a non-loopback
        // caller gets here, and loopback is all an open node serves.
        return config.Admin.Enabled
            ? Problems.Of(401, "Unauthorized", $"this endpoint needs the admin key in the {KeyAuthentication.AdminHeader} header", KeyAuthentication.AdminHeader)
            : Problems.Of(403, "Forbidden", "admin endpoints of a node without a keys file answer loopback callers only");
    }

    private static Role[] Needed(AuthorizationPolicy policy) =>
        [.. policy.Requirements.OfType<Microsoft.AspNetCore.Authorization.Infrastructure.RolesAuthorizationRequirement>()
            .SelectMany(x => x.AllowedRoles).Select(Enum.Parse<Role>).Distinct()];

    private static string Describe(Role[] roles) => string.Join(" or ", roles);
}
