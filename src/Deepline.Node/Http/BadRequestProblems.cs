using Microsoft.AspNetCore.Diagnostics;

namespace Deepline.Node.Http;

/// <summary>
/// Kestrel reports a body over the size limit (413), a body that arrives too slowly (408) or a malformed request
/// (400) by throwing from the body stream; without this they would surface as 500s.
/// </summary>
public sealed class BadRequestProblems : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken ct)
    {
        if (exception is not BadHttpRequestException bad || context.Response.HasStarted) return false;
        var problem = bad.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge => Problems.Of(413, "Payload too large",
                $"the request body is larger than this node accepts ({context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes, orchestrator.limits.max_body_bytes)"),
            StatusCodes.Status408RequestTimeout => Problems.Of(408, "Request timeout", "the request body arrived too slowly"),
            _ => Problems.Of(bad.StatusCode, "Bad request", "the request could not be read: " + bad.Message),
        };
        await problem.ExecuteAsync(context);
        return true;
    }
}
