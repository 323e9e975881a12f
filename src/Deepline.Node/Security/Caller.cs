using System.Collections.Immutable;
using System.Security.Claims;

namespace Deepline.Node.Security;

/// <summary>Who is calling, as the endpoints need it: a name for records, a client scope, the pools it serves.</summary>
public static class Caller
{
    public const string OpenName = "api";
    public const string AdminHeaderName = "admin";
    internal const string ScopeClaim = "deepline:client_scope";
    internal const string PoolsClaim = "deepline:pools";
    internal const string OpenClaim = "deepline:open";

    /// <summary>The name written as <c>cancelled_by</c>: the key's name, never something the body says.</summary>
    public static string Name(this ClaimsPrincipal user) => user.Identity?.Name ?? OpenName;

    /// <summary>The one client whose runs this caller may see; null: every client's.</summary>
    public static string? ClientScope(this ClaimsPrincipal user) => user.FindFirst(ScopeClaim)?.Value;

    /// <summary>The pools this caller may report task events for; null: any pool.</summary>
    public static ImmutableArray<string>? Pools(this ClaimsPrincipal user) =>
        user.FindFirst(PoolsClaim)?.Value is { } pools ? [.. pools.Split(',', StringSplitOptions.RemoveEmptyEntries)] : null;

    /// <summary>Whether the node runs without keys (the caller is whoever can reach the loopback address).</summary>
    public static bool IsOpen(this ClaimsPrincipal user) => user.HasClaim(c => c.Type == OpenClaim);

    internal static ClaimsPrincipal Open() => Principal(OpenName, [Role.submitter, Role.worker, Role.@operator], null, null, open: true);

    /// <summary>
    /// A loopback caller of an open node that has no admin key: the embedded default is one person on one machine,
    /// who must be able to force-complete a run without inventing a key first.
    /// </summary>
    internal static ClaimsPrincipal OpenAdmin() => Principal(OpenName, [Role.submitter, Role.worker, Role.@operator, Role.admin], null, null, open: true);

    internal static ClaimsPrincipal Admin() => Principal(AdminHeaderName, [Role.admin], null, null, open: false);

    internal static ClaimsPrincipal For(ApiKey key) =>
        Principal(key.Name, [key.Role], key.Role == Role.submitter ? key.ClientId : null, key.Pools, open: false);

    private static ClaimsPrincipal Principal(string name, Role[] roles, string? scope, ImmutableArray<string>? pools, bool open)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name) };
        claims.AddRange(roles.Select(r => new Claim(ClaimTypes.Role, r.ToString())));
        if (scope is not null) claims.Add(new Claim(ScopeClaim, scope));
        if (pools is { } p) claims.Add(new Claim(PoolsClaim, string.Join(',', p)));
        if (open) claims.Add(new Claim(OpenClaim, "true"));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, KeyAuthentication.SchemeName, ClaimTypes.Name, ClaimTypes.Role));
    }
}
