using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Deepline.Actors.Serialization;
using Deepline.Domain;

namespace Deepline.Actors.Tests.Serialization;

/// <summary>
/// One filled-in value for every type in the serializer's manifest table, built from the type's constructor and
/// init-only properties: every field gets a value that is not its default (a string naming the field, the last enum
/// member, a non-zero number, a one-element collection), so a field the serializer drops or renames shows as a
/// difference. Built by reflection rather than by hand so that a type added to the table is covered the day it is
/// added; a type whose fields this cannot fill fails <see cref="Of"/> by name.
/// </summary>
public static class Samples
{
    public static readonly DateTimeOffset At = new(2026, 11, 29, 8, 30, 15, 123, TimeSpan.Zero);

    private const string Text = "t-1";

    private static readonly JsonElement Json = JsonDocument.Parse("""{"n":1.5,"s":"two","b":true,"a":[1,null]}""").RootElement.Clone();

    public static object Of(Type type) => Build(type, type.Name, depth: 0);

    private static object Build(Type type, string name, int depth)
    {
        if (depth > 8) throw new InvalidOperationException($"sample of {type.Name} nests too deep at '{name}'");
        var nullable = Nullable.GetUnderlyingType(type);
        if (nullable is not null) return Build(nullable, name, depth);
        // One string for every field and key: ids that point at each other (TaskOrder -> Tasks) then agree.
        if (type == typeof(string)) return Text;
        if (type == typeof(int)) return 7;
        if (type == typeof(long)) return 11L;
        if (type == typeof(double)) return 2.5;
        if (type == typeof(bool)) return true;
        if (type == typeof(DateTimeOffset)) return At;
        if (type == typeof(TimeSpan)) return TimeSpan.FromMilliseconds(1500);
        if (type == typeof(JsonElement)) return Json;
        if (type.IsEnum) return Enum.GetValues(type).Cast<object>().Last();
        if (type.IsGenericType)
        {
            var def = type.GetGenericTypeDefinition();
            var args = type.GetGenericArguments();
            if (def == typeof(ImmutableArray<>)) return Collection(typeof(ImmutableArray), args[0], Build(args[0], name, depth + 1));
            if (def == typeof(ImmutableList<>)) return Collection(typeof(ImmutableList), args[0], Build(args[0], name, depth + 1));
            if (def == typeof(ImmutableHashSet<>)) return Collection(typeof(ImmutableHashSet), args[0], Build(args[0], name, depth + 1));
            if (def == typeof(ImmutableDictionary<,>))
            {
                var create = typeof(ImmutableDictionary).GetMethods()
                    .Single(m => m.Name == nameof(ImmutableDictionary.Create) && m.GetParameters().Length == 0)
                    .MakeGenericMethod(args);
                var empty = create.Invoke(null, null)!;
                return type.GetMethod("Add")!.Invoke(empty, [Build(args[0], name, depth + 1), Build(args[1], name, depth + 1)])!;
            }
        }
        if (type.IsInterface && type == typeof(IRunEvent)) return new TaskStarted(Text, Text, At);
        if (type.IsClass && !type.IsAbstract) return Record(type, depth);
        throw new InvalidOperationException($"no sample value for {type} (field '{name}'): teach {nameof(Samples)} this type");
    }

    private static object Collection(Type factory, Type element, object item) =>
        factory.GetMethods()
            .Single(m => m.Name == "Create" && m.GetParameters() is [{ ParameterType.IsGenericParameter: true }])
            .MakeGenericMethod(element)
            .Invoke(null, [item])!;

    private static object Record(Type type, int depth)
    {
        var ctor = type.GetConstructors().Where(c => !IsCopyConstructor(c, type)).MaxBy(c => c.GetParameters().Length)
                   ?? throw new InvalidOperationException($"{type.Name} has no public constructor");
        var value = ctor.Invoke([.. ctor.GetParameters().Select(p => Build(p.ParameterType, p.Name!, depth + 1))]);
        var fromCtor = ctor.GetParameters().Select(p => p.Name!).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var p in InitProperties(type).Where(p => !fromCtor.Contains(p.Name)))
            p.SetValue(value, Build(p.PropertyType, p.Name, depth + 1));
        return value;
    }

    private static bool IsCopyConstructor(ConstructorInfo c, Type type) => c.GetParameters() is [var only] && only.ParameterType == type;

    private static IEnumerable<PropertyInfo> InitProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true } && p.GetCustomAttribute<JsonIgnoreAttribute>() is not { Condition: JsonIgnoreCondition.Always }
                        && p.Name != "EqualityContract");

    /// <summary>Each public property of <paramref name="actual"/> equals <paramref name="expected"/>'s, compared as JSON.</summary>
    public static void AssertSameFields(object expected, object actual)
    {
        Assert.IsType(expected.GetType(), actual);
        foreach (var p in expected.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0))
        {
            var want = JsonSerializer.SerializeToNode(p.GetValue(expected), p.PropertyType, DeeplineSerializer.Options);
            var got = JsonSerializer.SerializeToNode(p.GetValue(actual), p.PropertyType, DeeplineSerializer.Options);
            Assert.True(JsonNode.DeepEquals(want, got), $"{expected.GetType().Name}.{p.Name}: wrote {want?.ToJsonString()}, read back {got?.ToJsonString()}");
        }
    }
}
