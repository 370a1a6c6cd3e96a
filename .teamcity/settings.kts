// Slipway for TeamCity (Kotlin DSL, versioned settings): integrate, deliver, roll back, provision.
// docs/ci.md is the manual: parameters, credentials, agents, outcomes and exit codes. Every script below is a command
// docs/ci.md gives, word for word once Kotlin's ${'$'} is read as $ (tests/unit/test_pipelines.py checks it).
import jetbrains.buildServer.configs.kotlin.*
import jetbrains.buildServer.configs.kotlin.buildFeatures.XmlReport
import jetbrains.buildServer.configs.kotlin.buildFeatures.sshAgent
import jetbrains.buildServer.configs.kotlin.buildFeatures.xmlReport
import jetbrains.buildServer.configs.kotlin.buildSteps.script
import jetbrains.buildServer.configs.kotlin.vcs.GitVcsRoot

version = "2025.03"

val contexts = listOf("staging", "showroom", "production")

project {
    description = "Slipway: integrate a branch, deliver a context, roll it back, provision its nodes (docs/ci.md)"

    vcsRoot(Ecosystem)

    params {
        select("env.CONTEXT", "staging", label = "Context", description = "The inventory under inventories/",
               display = ParameterDisplay.PROMPT, options = contexts)
        checkbox("env.PRODUCTION_CONFIRMED", "false", label = "Production confirmed",
                 description = "Required to change production", checked = "true", unchecked = "false")
        text("ecosystem.url", "", label = "Ecosystem repository",
             description = "Git URL of the systems to build and deliver", allowEmpty = false)
        // the vault password comes from TeamCity's credential store (a secure token), never from a file on disk:
        // hack/vault-password.sh prints it for --vault-password-file
        password("env.SLIPWAY_VAULT_PASSWORD", "credentialsJSON:00000000-0000-0000-0000-000000000000",
                 label = "Ansible Vault password", display = ParameterDisplay.HIDDEN)
        param("env.VAULT_PASSWORD_FILE", "hack/vault-password.sh")
        param("env.SLIPWAY_ECOSYSTEM_ROOT", "%teamcity.build.checkoutDir%/ecosystem")
        // what the journal records as the job (TeamCity exports no build URL of its own) and the holder's name
        param("env.SLIPWAY_CI_JOB_URL", "%teamcity.serverUrl%/viewLog.html?buildId=%teamcity.build.id%")
        param("env.BUILD_TAG", "teamcity-%system.teamcity.buildType.id%-%build.number%")
        // service messages: blocks, progress, statistics and build problems (plugins/callback/ci.py)
        param("env.ANSIBLE_CALLBACKS_ENABLED", "ansible.posix.profile_tasks,slipway.platform.ci")
    }

    features {
        // one job per context at a time: a shared resource per context, each build type takes its write lock
        for (context in contexts) {
            feature {
                type = "JetBrains.SharedResources"
                param("name", "slipway-$context")
                param("type", "quoted")
                param("quota", "1")
            }
        }
    }

    buildType(Integrate)
    buildType(Deliver)
    buildType(Rollback)
    buildType(Provision)
}

object Ecosystem : GitVcsRoot({
    name = "Ecosystem"
    url = "%ecosystem.url%"
    branch = "refs/heads/main"
    branchSpec = "+:refs/heads/*"
})

/** What every Slipway build type shares: checkouts, the client install, the context's lock, reports. */
fun BuildType.slipway(steps: BuildSteps.() -> Unit) {
    vcs {
        root(DslContext.settingsRoot)
        root(Ecosystem, "+:. => ecosystem")
    }
    steps {
        script {
            name = "Client"
            scriptContent = """hack/client-install.sh .slipway"""
        }
        steps()
    }
    features {
        feature {
            type = "JetBrains.SharedResources"
            param("locks-param", "slipway-%env.CONTEXT% writeLock")
        }
        xmlReport {
            reportType = XmlReport.XmlReportType.JUNIT
            rules = "reports/*.xml"
        }
    }
    artifactRules = "reports => reports"
}

object Integrate : BuildType({
    name = "Integrate"
    description = "Rebase REPOSITORIES on their targets, build, test, deliver (rolled back on failure), merge"
    params {
        text("env.REPOSITORIES", "[{\"path\": \"%teamcity.build.checkoutDir%/ecosystem\", \"target\": \"main\"}]",
             label = "Repositories", description = "JSON list of {path, target, remote}")
    }
    slipway {
        script {
            name = "Integrate"
            scriptContent = """. .slipway/env && slipway-ci -- -i "inventories/${'$'}CONTEXT" playbooks/integrate.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE" -e '{"slipway_integrate_repositories": '"${'$'}REPOSITORIES"'}' """
        }
        script {
            // runs even when the build was stopped: an aborted integration never reached its own release
            name = "Release the context's hold"
            executionMode = BuildStep.ExecutionMode.ALWAYS
            scriptContent = """. .slipway/env && ansible-playbook -i "inventories/${'$'}CONTEXT" playbooks/release_hold.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE""""
        }
    }
})

object Deliver : BuildType({
    name = "Deliver"
    description = "Build, test and deliver the context's systems"
    slipway {
        script {
            name = "Build"
            scriptContent = """. .slipway/env && slipway-ci -- -i "inventories/${'$'}CONTEXT" playbooks/build.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE""""
        }
        script {
            name = "Test"
            scriptContent = """. .slipway/env && slipway-ci -- -i "inventories/${'$'}CONTEXT" playbooks/test.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE""""
        }
        script {
            name = "Deliver"
            scriptContent = """. .slipway/env && slipway-ci -- -i "inventories/${'$'}CONTEXT" playbooks/deliver.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE" -e "slipway_production_confirmed=${'$'}PRODUCTION_CONFIRMED""""
        }
    }
})

object Rollback : BuildType({
    name = "Roll back"
    description = "Restore the previous good release, or ROLLBACK_REVISION"
    params {
        text("env.ROLLBACK_REVISION", "", label = "Revision", description = "Empty: the previous good release",
             allowEmpty = true)
    }
    slipway {
        script {
            name = "Roll back"
            scriptContent = """. .slipway/env && slipway-ci -- -i "inventories/${'$'}CONTEXT" playbooks/rollback.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE" -e "slipway_production_confirmed=${'$'}PRODUCTION_CONFIRMED" ${'$'}{ROLLBACK_REVISION:+-e slipway_rollback_revision=${'$'}ROLLBACK_REVISION}"""
        }
    }
})

object Provision : BuildType({
    name = "Provision"
    description = "Provision the context's nodes: playbooks/provision.yml over SSH"
    slipway {
        script {
            name = "Provision"
            scriptContent = """. .slipway/env && slipway-ci -- -i "inventories/${'$'}CONTEXT" playbooks/provision.yml --vault-password-file "${'$'}VAULT_PASSWORD_FILE""""
        }
    }
    features {
        // the nodes' SSH key from TeamCity's SSH keys store, loaded into an ssh-agent for the build
        sshAgent {
            teamcitySshKey = "slipway-node-ssh"
        }
    }
})
