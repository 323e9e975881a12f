using System.Security.Cryptography;
using System.Text;
using Deepline.Node.Configuration;

namespace Deepline.Node.Http;

/// <summary>
/// The admin role: a shared key (<c>orchestrator.admin.key</c>) sent as <see cref="HeaderName"/>. Without a
/// configured key the guarded endpoints answer 403 "admin disabled": they are never open by default.
/// </summary>
public static class AdminAuth
{
    public const string HeaderName = "X-Deepline-Admin-Key";

    public static TBuilder RequireAdmin<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var admin = context.HttpContext.RequestServices.GetRequiredService<DeeplineConfig>().Admin;
            return Check(admin, context.HttpContext.Request.Headers[HeaderName].ToString()) ?? await next(context);
        });

    /// <summary>null when the presented key is the configured one; else the problem to answer.</summary>
    public static IResult? Check(AdminConfig admin, string? presented)
    {
        if (!admin.Enabled)
            return Problems.Of(403, "Admin disabled",
                "admin endpoints are disabled on this node: set orchestrator.admin.key (DEEPLINE_ADMIN_KEY) to enable them");
        if (string.IsNullOrEmpty(presented))
            return Problems.Of(401, "Unauthorized", $"this endpoint needs the admin key in the {HeaderName} header", HeaderName);
        return Matches(admin.Key, presented)
            ? null
            : Problems.Of(403, "Forbidden", $"the {HeaderName} header does not hold the admin key", HeaderName);
    }

    /// <summary>Compares digests so that neither the content nor the length of the key leaks through timing.</summary>
    private static bool Matches(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)),
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
