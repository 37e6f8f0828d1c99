# The cluster's shared secrets, made once on the host beside the Vagrantfile (in .cluster/, which
# the synced folder carries to the nodes): the CA that node 1's pyapiserver signs its certificates
# with (so a joining node trusts the API server before it ever talks to it) and one bearer token
# per node (system:node:<name>).
require "fileutils"
require "openssl"
require "securerandom"

module ClusterSecrets
  CA_SUBJECT = "/CN=pycontainer-vagrant-ca"
  CA_DAYS = 3650

  def self.ensure(dir, node_names)
    FileUtils.mkdir_p(dir)
    File.chmod(0o700, dir)
    key_path = File.join(dir, "ca.key")
    cert_path = File.join(dir, "ca.crt")
    write_ca(key_path, cert_path) unless File.exist?(key_path) && File.exist?(cert_path)
    node_names.each do |name|
      path = File.join(dir, "#{name}.token")
      File.write(path, SecureRandom.hex(16), perm: 0o600) unless File.exist?(path)
    end
  end

  def self.write_ca(key_path, cert_path)
    key = OpenSSL::PKey::EC.generate("prime256v1")
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = OpenSSL::BN.new(SecureRandom.hex(16), 16)
    cert.subject = cert.issuer = OpenSSL::X509::Name.parse(CA_SUBJECT)
    cert.public_key = key
    cert.not_before = Time.now - 300
    cert.not_after = Time.now + CA_DAYS * 86_400
    extensions = OpenSSL::X509::ExtensionFactory.new(cert, cert)
    cert.add_extension(extensions.create_extension("basicConstraints", "CA:TRUE", true))
    cert.add_extension(extensions.create_extension("keyUsage", "digitalSignature,keyCertSign,cRLSign", true))
    cert.add_extension(extensions.create_extension("subjectKeyIdentifier", "hash", false))
    cert.sign(key, OpenSSL::Digest.new("SHA256"))
    File.write(key_path, key.private_to_pem, perm: 0o600)
    File.write(cert_path, cert.to_pem, perm: 0o644)
  end
end
