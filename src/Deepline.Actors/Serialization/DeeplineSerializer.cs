using System.Collections.Frozen;
using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Event;
using Akka.Serialization;
using Deepline.Domain;
using Deepline.Actors.Workers;

namespace Deepline.Actors.Serialization;

/// <summary>
/// JSON for every journalled event, snapshot and cluster message. The manifest is the type's short name,
/// so renaming a namespace never breaks an existing journal.
/// <para>
/// Renaming a type or a property breaks every journal written before: add the old manifest to
/// <see cref="Aliases"/> (and keep reading the old property name, e.g. with an init-only alias property) in the
/// same commit as the rename. The golden payloads under tests/Deepline.Actors.Tests/Golden (one per manifest, from
/// every version that wrote them) are read back by GoldenPayloadTests and fail the build of a version that
/// cannot read them any more.
/// </para>
/// </summary>
public sealed class DeeplineSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int SerializerId = 4711;

    /// <summary>Manifests of renamed types (old name -> today's type). Empty so far: nothing was renamed.</summary>
    private static readonly IReadOnlyDictionary<string, Type> Aliases = new Dictionary<string, Type>();

    private static readonly FrozenDictionary<string, Type> Types = typeof(IDeeplineMessage).Assembly.GetTypes()
        .Concat(typeof(DeeplineSerializer).Assembly.GetTypes())
        .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IDeeplineMessage).IsAssignableFrom(t))
        .Select(t => KeyValuePair.Create(t.Name, t))
        .Concat(Aliases)
        .ToFrozenDictionary();

    /// <summary>Every manifest this version reads (today's names and <see cref="Aliases"/>) and its type.</summary>
    public static IReadOnlyDictionary<string, Type> Manifests => Types;

    /// <summary>
    /// The journal's JSON, separate from the wire's (<see cref="Deepline.Worker.Sdk.WireJson"/>) on purpose: its
    /// property names and timestamp form are those every stored event was written with, and must stay so.
    /// </summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = JsonLimits.StoreMaxDepth,
    };

    public override int Identifier => SerializerId;

    public override string Manifest(object o) => o.GetType().Name;

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Options);

    /// <summary>
    /// A payload that cannot be read comes back as <see cref="UnreadablePayload"/> instead of an exception: thrown
    /// here, it would fail a run's recovery (the entity restarting forever, every request timing out) and stop the
    /// run index stream at the same offset on every restart. As a value, each reader decides what it means.
    /// </summary>
    public override object FromBinary(byte[] bytes, string manifest)
    {
        try
        {
            return Types.TryGetValue(manifest, out var type)
                ? JsonSerializer.Deserialize(bytes, type, Options)
                  ?? throw new SerializationException($"empty payload for {manifest}")
                : throw new SerializationException($"unknown manifest '{manifest}'");
        }
        catch (Exception ex) when (ex is JsonException or SerializationException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            // The payload itself is never logged: it may hold a caller's data.
            var error = $"{ex.GetType().Name}: {ex.Message}";
            system.Log.Error("Unreadable {0} payload of {1} bytes: {2}", manifest, bytes.Length, error);
            return new UnreadablePayload(manifest, error);
        }
    }
}

/// <summary>What <see cref="DeeplineSerializer.FromBinary"/> returns for bytes it cannot read (corrupt or unknown).</summary>
public sealed record UnreadablePayload(string Manifest, string Error);
