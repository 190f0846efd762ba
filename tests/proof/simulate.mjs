// Asks an IAM policy evaluator (@cloud-copilot/iam-simulate) about each request.
// stdin:  {"policies": {name: policy document}, "requests": [{policy, principal, action, resource}]}
// stdout: one answer per request: {"result": "Allowed" | "ImplicitlyDenied" | ..., "allowedBy": [Sid], "errors": ...}
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { policies, requests } = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const answers = []
for (const request of requests) {
  const accountId = request.principal.split(':')[4]
  const simulation = {
    identityPolicies: [{ name: request.policy, policy: policies[request.policy] }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId },
      contextVariables: {},
    },
  }
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    answers.push({ result: 'Error', allowedBy: [], errors: response.errors })
    continue
  }
  const identity = response.result.analysis.identityAnalysis ?? {}
  answers.push({
    result: response.result.analysis.result,
    allowedBy: (identity.allowStatements ?? []).map((s) => s.explain.identifier),
    errors: null,
  })
}
process.stdout.write(JSON.stringify(answers))
