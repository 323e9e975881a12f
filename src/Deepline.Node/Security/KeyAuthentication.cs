using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Deepline.Node.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Deepline.Node.Security;

/// <summary>
/// Turns <c>Authorization: Bearer &lt;key&gt;</c> (or the older <c>X-Deepline-Admin-Key</c>) into a principal with
/// the key's name, role, client and pools. Without a keys file every caller is the open principal (the node
/// then listens on loopback only; the config loader refuses anything else).
/// </summary>
public sealed class KeyAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, KeyRing keys, DeeplineConfig config)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "DeeplineKey";
    public const string AdminHeader = "X-Deepline-Admin-Key";

    /// <summary>Why authentication failed, with the status to answer: read by <see cref="AuthorizationProblems"/>.</summary>
    internal sealed record Refusal(int Status, string Title, string Detail, string Field);

    internal static readonly object RefusalKey = new();

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var authorization = Request.Headers.Authorization.ToString();
        if (authorization.Length > 0)
        {
            if (!authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || authorization.Length <= 7)
                return Refuse(401, "Unauthorized", "the Authorization header must be 'Bearer <key>'", "Authorization");
            var presented = authorization[7..].Trim();
            if (keys.Enabled)
                return keys.Match(presented) is { } key
                    ? Success(Caller.For(key))
                    : Refuse(401, "Unauthorized", "the key in the Authorization header is not valid (unknown or revoked)", "Authorization");
            // Open node: a bearer key may still be the admin key, so one --key flag works for every command.
            if (config.Admin.Enabled && SameKey(config.Admin.Key, presented)) return Success(Caller.Admin());
            return Success(OpenCaller());
        }

        var adminKey = Request.Headers[AdminHeader].ToString();
        if (adminKey.Length > 0 && config.Admin.Enabled)
            return SameKey(config.Admin.Key, adminKey)
                ? Success(Caller.Admin())
                : Refuse(403, "Forbidden", $"the {AdminHeader} header does not hold the admin key", AdminHeader);

        return keys.Enabled ? Task.FromResult(AuthenticateResult.NoResult()) : Success(OpenCaller());
    }

    /// <summary>
    /// On an open node a loopback caller is admin unless an admin key was configured: setting one is the operator
    /// saying admin acts need more than being on this machine. The address is checked although the loader already
    /// keeps an open node on loopback, so that a listener added later cannot widen who is admin.
    /// </summary>
    private System.Security.Claims.ClaimsPrincipal OpenCaller() =>
        !config.Admin.Enabled && Context.Connection.RemoteIpAddress is { } address && System.Net.IPAddress.IsLoopback(address)
            ? Caller.OpenAdmin()
            : Caller.Open();

    private Task<AuthenticateResult> Success(System.Security.Claims.ClaimsPrincipal principal) =>
        Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));

    private Task<AuthenticateResult> Refuse(int status, string title, string detail, string field)
    {
        Context.Items[RefusalKey] = new Refusal(status, title, detail, field);
        return Task.FromResult(AuthenticateResult.Fail(detail));
    }

    /// <summary>Digests first, so that neither the content nor the length of the key leaks through timing.</summary>
    private static bool SameKey(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)),
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
