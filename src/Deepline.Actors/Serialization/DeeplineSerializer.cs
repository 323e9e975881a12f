using System.Collections.Frozen;
using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Deepline.Domain;
using Deepline.Actors.Workers;

namespace Deepline.Actors.Serialization;

/// <summary>
/// JSON for every journalled event, snapshot and cluster message. The manifest is the type's short name,
/// so renaming a namespace never breaks an existing journal; renaming a type needs an alias here.
/// </summary>
public sealed class DeeplineSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int SerializerId = 4711;

    private static readonly FrozenDictionary<string, Type> Types = typeof(IDeeplineMessage).Assembly.GetTypes()
        .Concat(typeof(DeeplineSerializer).Assembly.GetTypes())
        .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IDeeplineMessage).IsAssignableFrom(t))
        .ToFrozenDictionary(t => t.Name);

    public static JsonSerializerOptions Options { get; } = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public override int Identifier => SerializerId;

    public override string Manifest(object o) => o.GetType().Name;

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Options);

    public override object FromBinary(byte[] bytes, string manifest) =>
        Types.TryGetValue(manifest, out var type)
            ? JsonSerializer.Deserialize(bytes, type, Options)
              ?? throw new SerializationException($"empty payload for {manifest}")
            : throw new SerializationException($"unknown manifest '{manifest}'");
}
