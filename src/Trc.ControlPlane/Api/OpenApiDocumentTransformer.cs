using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Trc.Core.Api;

namespace Trc.ControlPlane.Api;

/// <summary>
/// What the generated document cannot know on its own: its title, that every operation needs a
/// bearer token, and that every operation may answer with an RFC 7807 problem.
/// </summary>
public static class OpenApiDocumentTransformer
{
    private const string Bearer = "bearer";
    private const string Problem = "ProblemView";

    /// <summary>Completes the document.</summary>
    public static async Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken ct)
    {
        document.Info.Title = "trc API";
        document.Info.Version = "v1";
        document.Info.Description = "The trc control plane. Every endpoint under /v1 needs `Authorization: Bearer <token>`; "
            + "errors are RFC 7807 problems (application/problem+json) with a stable `code` and the offending `field`. "
            + "Mutating calls accept an `Idempotency-Key` header.";
        document.Servers?.Clear();

        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[Bearer] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An API token (trc_...): the admin token written on first start, the shared node token (node-token) that node agents use, or one made with POST /v1/orgs/{org}/tokens.",
        };
        document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Bearer, document)] = [] }];

        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas[Problem] = await context.GetOrCreateSchemaAsync(typeof(ProblemView), cancellationToken: ct).ConfigureAwait(false);
        var tags = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (template, path) in document.Paths)
        {
            if (path.Operations is null)
            {
                continue;
            }
            // Tags by resource, not by the host assembly's name (which the generator would use, and
            // which differs between `trc server` and a test host).
            var tag = TagOf(template);
            tags.Add(tag);
            foreach (var operation in path.Operations.Values)
            {
                operation.Tags = new HashSet<OpenApiTagReference> { new(tag, document) };
                operation.Responses ??= new OpenApiResponses();
                operation.Responses["default"] = new OpenApiResponse
                {
                    Description = "A problem: 400 bad request, 401 no valid token, 403 role or quota, 404 not found (or another org's), 409 conflict, 413 body too large, 415 not JSON, 422 invalid, 503 not ready.",
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/problem+json"] = new OpenApiMediaType { Schema = new OpenApiSchemaReference(Problem, document) },
                    },
                };
            }
        }
        document.Tags = new HashSet<OpenApiTag>(tags.Select(t => new OpenApiTag { Name = t }));
    }

    private static readonly string[] Resources = ["tokens", "apps", "envs", "releases", "routes", "ipv4", "secrets", "volumes", "events", "instances", "logs"];

    private static string TagOf(string template)
    {
        if (template.StartsWith(NodeApiPaths.Nodes, StringComparison.Ordinal))
        {
            return "nodes";
        }
        var segments = template.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = segments.Length - 1; i >= 0; i--)
        {
            if (Resources.Contains(segments[i]))
            {
                return segments[i];
            }
        }
        return template.StartsWith(ApiPaths.WhoAmI, StringComparison.Ordinal) ? "auth" : "orgs";
    }
}
