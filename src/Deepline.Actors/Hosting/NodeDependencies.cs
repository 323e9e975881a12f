using Deepline.Actors.Cancellation;

namespace Deepline.Actors.Hosting;

/// <summary>
/// The node's connections that /health reports on but that are created inside the actor system (the Redis store is
/// made when the actors start, after the web host's services were built).
/// </summary>
public sealed class NodeDependencies
{
    private volatile RedisCancelStore? _redis;

    public RedisCancelStore? Redis
    {
        get => _redis;
        internal set => _redis = value;
    }
}
