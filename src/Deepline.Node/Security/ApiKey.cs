using System.Collections.Immutable;

namespace Deepline.Node.Security;

/// <summary>What a key may do. Each role is a job a caller has, not a rank: only admin includes the others.</summary>
public enum Role { submitter, worker, @operator, admin }

/// <summary>
/// One entry of the keys file. Only the SHA-256 digest of the key is kept in memory, so a heap dump or a
/// record printed by mistake never shows a usable key.
/// </summary>
public sealed record ApiKey(string Name, Role Role, string? ClientId, ImmutableArray<string>? Pools, ImmutableArray<byte> Sha256)
{
    public override string ToString() => $"ApiKey {{ Name = {Name}, Role = {Role}, ClientId = {ClientId ?? "-"} }}";
}
