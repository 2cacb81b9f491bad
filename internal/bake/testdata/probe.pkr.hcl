# A probe of what a template's code sees: its shell-local provisioner writes its
# environment and uid to ${var.out}/env.txt. Used by internal/bake and
# internal/app tests.
variable "out" {
  type = string
}
source "null" "probe" {
  communicator = "none"
}
build {
  sources = ["source.null.probe"]
  provisioner "shell-local" {
    inline = ["env > ${var.out}/env.txt", "echo \"uid=$(id -u)\" >> ${var.out}/env.txt"]
  }
  post-processor "manifest" {
    output = "packer-manifest.json"
  }
}
